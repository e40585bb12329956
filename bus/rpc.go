package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/nats-io/nats.go"

	"github.com/hornbeam-go/hornbeam/internal/handoff"
	"github.com/hornbeam-go/hornbeam/metrics"
)

type callResult struct {
	value []byte
	err   error
}

type pendingCall struct {
	id   uint64
	node string
	slot handoff.Slot[callResult]
}

// Call runs module.function(*args) on node and returns its CBOR result. args is
// a CBOR array (nil for none). Errors: ErrNodeDown (unknown node, no responder,
// or the node went down while the call ran: reported as soon as that is known),
// ErrTimeout, ErrBadRPC, ErrPayloadTooLarge, ErrBusy, or a *RemoteError; all
// wrapped in a *CallError.
func (b *Bus) Call(ctx context.Context, node, module, function string, args []byte) ([]byte, error) {
	t0 := time.Now()
	v, err := b.call(ctx, node, module, function, args)
	b.cfg.Metrics.RPCCall(outcome(err), time.Since(t0))
	if err != nil {
		return nil, &CallError{Node: node, Module: module, Function: function, Err: err}
	}
	return v, nil
}

func (b *Bus) call(ctx context.Context, node, module, function string, args []byte) ([]byte, error) {
	if node == b.name {
		return b.local(ctx, module, function, args)
	}
	if err := b.members.reachable(node); err != nil {
		return nil, err
	}
	data, err := b.encodeRequest(ctx, module, function, args)
	if err != nil {
		return nil, err
	}
	return b.request(ctx, node, data, nil)
}

// request sends data to node until a subscriber gets it, and waits for the
// reply; hdr marks a cast.
func (b *Bus) request(ctx context.Context, node string, data []byte, hdr nats.Header) ([]byte, error) {
	// A request that found no subscriber was never delivered, so it is safe to
	// send again. A node heard from moments ago is alive: NATS can briefly lack
	// its interest while routes are being (re)established, so retry for a short
	// while before declaring it down.
	start := time.Now()
	backoff := 5 * time.Millisecond
	for {
		v, err := b.attempt(ctx, node, data, hdr)
		if !errors.Is(err, errNoResponder) {
			return v, err
		}
		if time.Since(start) > 2*b.cfg.Heartbeat || !b.members.heardWithin(node, 2*b.cfg.Heartbeat) {
			b.members.noResponder(node)
			return nil, fmt.Errorf("%w: no node %s is listening", ErrNodeDown, node)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ErrTimeout
		case <-b.ctx.Done():
			return nil, ErrClosed
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// maxBudget caps a request's time budget (ms) so that a hostile value cannot
// overflow a time.Duration: about 100 days.
const maxBudget = int64(1) << 33

// errNoResponder: the request reached no subscriber (NATS status 503).
var errNoResponder = errors.New("no responder")

// attempt sends one request and waits for its reply.
func (b *Bus) attempt(ctx context.Context, node string, data []byte, hdr nats.Header) ([]byte, error) {
	pc := &pendingCall{id: b.nextID.Add(1), node: node}
	b.pmu.Lock()
	b.pending[pc.id] = pc
	set := b.byNode[node]
	if set == nil {
		set = map[uint64]*pendingCall{}
		b.byNode[node] = set
	}
	set[pc.id] = pc
	b.pmu.Unlock()
	defer b.forget(pc)

	msg := &nats.Msg{Subject: b.rpcSubject(node), Reply: b.inbox + "." + strconv.FormatUint(pc.id, 36), Data: data, Header: hdr}
	if err := b.nc.PublishMsg(msg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNodeDown, err)
	}
	// No spinning (nil): a round trip to another process takes longer than any
	// useful spin, and spinning here (measured) only takes CPU from the peer.
	r, err := pc.slot.Wait(ctx, nil, b.ctx.Done())
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return nil, ErrTimeout
	case errors.Is(err, handoff.ErrStopped):
		return nil, ErrClosed
	case err != nil:
		return nil, err
	}
	return r.value, r.err
}

func (b *Bus) forget(pc *pendingCall) {
	b.pmu.Lock()
	delete(b.pending, pc.id)
	if set := b.byNode[pc.node]; set != nil {
		delete(set, pc.id)
		if len(set) == 0 {
			delete(b.byNode, pc.node)
		}
	}
	b.pmu.Unlock()
}

// failNode ends every call waiting on node with err.
func (b *Bus) failNode(node string, err error) {
	b.pmu.Lock()
	var calls []*pendingCall
	for _, pc := range b.byNode[node] {
		calls = append(calls, pc)
	}
	b.pmu.Unlock()
	for _, pc := range calls {
		pc.slot.Deliver(callResult{err: err})
	}
}

func (b *Bus) failAll(err error) {
	b.pmu.Lock()
	var calls []*pendingCall
	for _, pc := range b.pending {
		calls = append(calls, pc)
	}
	b.pmu.Unlock()
	for _, pc := range calls {
		pc.slot.Deliver(callResult{err: err})
	}
}

func (b *Bus) encodeRequest(ctx context.Context, module, function string, args []byte) ([]byte, error) {
	if len(args) == 0 {
		args = emptyArgs
	}
	req := request{Module: module, Function: function, Args: args, From: b.name}
	if d, ok := ctx.Deadline(); ok {
		// Rounded up, and at least 1 ms: 0 would mean no deadline.
		req.Budget = max(1, (time.Until(d) + time.Millisecond - 1).Milliseconds())
	}
	data, err := encMode.Marshal(&req)
	if err != nil {
		return nil, fmt.Errorf("bus: encoding request: %w", err)
	}
	if len(data) > b.maxPayload {
		return nil, fmt.Errorf("%w: the request is %d bytes, over the %d-byte limit (--max-payload)",
			ErrPayloadTooLarge, len(data), b.maxPayload)
	}
	return data, nil
}

// onReply delivers a reply (or NATS's no-responders status) to its caller.
func (b *Bus) onReply(m *nats.Msg) {
	i := strings.LastIndexByte(m.Subject, '.')
	id, err := strconv.ParseUint(m.Subject[i+1:], 36, 64)
	if err != nil {
		return
	}
	b.pmu.Lock()
	pc := b.pending[id]
	b.pmu.Unlock()
	if pc == nil {
		return // the caller gave up
	}
	if m.Header != nil && m.Header.Get("Status") == "503" {
		// Nobody subscribes to that node's subject: it is gone, never was, or
		// its interest has not reached us yet; call decides which.
		pc.slot.Deliver(callResult{err: errNoResponder})
		return
	}
	pc.slot.Deliver(decodeReply(pc.node, m.Data))
}

func decodeReply(node string, data []byte) callResult {
	var r reply
	if err := decMode.Unmarshal(data, &r); err != nil {
		return callResult{err: fmt.Errorf("bus: malformed reply from %s: %w", node, err)}
	}
	switch r.Status {
	case statusOK:
		return callResult{value: r.Value}
	case statusRemote:
		return callResult{err: &RemoteError{Node: node, Type: r.Type, Message: r.Message, Traceback: r.Traceback}}
	case statusBadRPC:
		return callResult{err: BadRPC(r.Message)}
	default:
		kind := ErrBusy
		if r.Type == "payload" {
			kind = ErrPayloadTooLarge
		}
		return callResult{err: fmt.Errorf("%w: %s", kind, r.Message)}
	}
}

// local runs a call to this node itself, without the network.
func (b *Bus) local(ctx context.Context, module, function string, args []byte) ([]byte, error) {
	if b.cfg.Handler == nil {
		return nil, BadRPC("this node runs no Python")
	}
	if len(args) == 0 {
		args = emptyArgs
	}
	// Calls to this node itself count against the same bounds as others'.
	if err := b.admit(len(args)); err != nil {
		return nil, err
	}
	v, err := b.cfg.Handler.Call(ctx, module, function, args)
	b.release(len(args))
	if err == nil {
		return v, nil
	}
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		re.Node = b.name
		return nil, re
	case errors.Is(err, ErrBadRPC), errors.Is(err, ErrBusy), errors.Is(err, ErrPayloadTooLarge):
		return nil, err
	case errors.Is(err, context.DeadlineExceeded):
		return nil, ErrTimeout
	default:
		return nil, &RemoteError{Node: b.name, Type: "RuntimeError", Message: err.Error()}
	}
}

// Cast sends the call and returns once node has queued it; its result is
// dropped there, and failures are logged and counted there (CastStats). A node
// at its bounds refuses it: Cast retries for up to CastWait (or ctx's end),
// which slows a caller that casts faster than node runs, then returns ErrBusy:
// the cast did not run. Other errors: ErrNodeDown, ErrPayloadTooLarge,
// ErrClosed; all wrapped in a *CallError.
func (b *Bus) Cast(ctx context.Context, node, module, function string, args []byte) error {
	ctx, cancel := context.WithTimeout(ctx, CastAckWait)
	defer cancel()
	err := b.cast(ctx, node, module, function, args)
	b.cfg.Metrics.RPCCast(outcome(err))
	if err != nil {
		return &CallError{Node: node, Module: module, Function: function, Err: err}
	}
	return nil
}

// CastWait bounds how long Cast retries a node that refuses a cast because it
// is at its bounds; CastAckWait bounds the wait for the node's answer (taken
// or refused) to one attempt. A cast whose answer does not come in time
// (a hung node) fails with ErrTimeout: it may or may not run.
const (
	CastWait    = time.Second
	CastAckWait = 30 * time.Second
)

// castHeader marks a cast that wants to hear it was queued.
const castHeader = "Hb-Cast"

var castHdr = nats.Header{castHeader: []string{"1"}}

func (b *Bus) cast(ctx context.Context, node, module, function string, args []byte) error {
	if len(args) == 0 {
		args = emptyArgs
	}
	local := node == b.name
	var data []byte
	if !local {
		if err := b.members.reachable(node); err != nil {
			return err
		}
		var err error
		// No deadline in the request: the target applies its --cast-timeout.
		if data, err = b.encodeRequest(context.Background(), module, function, args); err != nil {
			return err
		}
	}
	start := time.Now()
	// A refused large cast is sent again in full: retry it less often.
	backoff, most := time.Millisecond, 50*time.Millisecond
	if len(data) >= windowed {
		backoff, most = 20*time.Millisecond, 250*time.Millisecond
	}
	for {
		var err error
		switch {
		case local:
			err = b.castLocal(module, function, args)
		case len(data) < windowed:
			_, err = b.request(ctx, node, data, castHdr)
		default:
			wctx, cancel := context.WithDeadline(ctx, start.Add(CastWait))
			err = b.sent.Acquire(wctx, int64(len(data)))
			cancel()
			if err != nil {
				return fmt.Errorf("%w: this node's large casts in flight (%d bytes at most) did not drain within %v",
					ErrBusy, b.sent.Max(), CastWait)
			}
			_, err = b.request(ctx, node, data, castHdr)
			b.sent.Release(int64(len(data)))
		}
		if !errors.Is(err, ErrBusy) {
			if errors.Is(err, ErrTimeout) {
				return fmt.Errorf("%w: node %s did not answer the cast within %v; it may or may not run", ErrTimeout, node, CastAckWait)
			}
			return err
		}
		if time.Since(start)+backoff > CastWait {
			return err // refused: it did not run
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		case <-b.ctx.Done():
			return ErrClosed
		}
		backoff = min(2*backoff, most)
	}
}

// castLocal runs a cast to this node itself, within the same bounds as others'.
func (b *Bus) castLocal(module, function string, args []byte) error {
	if b.cfg.Handler == nil {
		return BadRPC("this node runs no Python")
	}
	if err := b.admit(len(args)); err != nil {
		return err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.release(len(args))
		b.runCast(&request{Module: module, Function: function, Args: args, From: b.name})
	}()
	return nil
}

// runCast runs a cast under its deadline and logs and counts its failure.
func (b *Bus) runCast(req *request) {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.CastTimeout)
	defer cancel()
	if req.Budget > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(min(req.Budget, maxBudget))*time.Millisecond)
		defer cancel()
	}
	_, err := b.cfg.Handler.Call(ctx, req.Module, req.Function, req.Args)
	b.cfg.Metrics.RPCServed(servedOutcome(ctx, err))
	if err == nil {
		b.casts.run.Add(1)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: still running after --cast-timeout %v; interrupted", ErrTimeout, b.cfg.CastTimeout)
	}
	b.castFailed(req, err)
}

func (b *Bus) castFailed(req *request, err error) {
	b.logCast("cast failed", req, err, b.casts.failed.Add(1))
}

// logCast logs a cast that did not run to its end. Every one is counted; the
// log keeps the first ten and then one a second, so that a flood of bad casts
// cannot flood it.
func (b *Bus) logCast(msg string, req *request, err error, total int64) {
	now := time.Now().UnixNano()
	last := b.casts.lastLog.Load()
	if total > 10 && now-last < int64(time.Second) {
		return
	}
	if b.casts.lastLog.CompareAndSwap(last, now) {
		b.log.Warn(msg, "from", req.From, "module", req.Module, "function", req.Function,
			"err", err, "total", total)
	}
}

// castCounts are a node's counts of the casts it was sent.
type castCounts struct {
	run, failed, refused atomic.Int64
	lastLog              atomic.Int64
}

// CastStats counts the casts this node was sent: run (returned), failed
// (raised, missing, timed out; each logged with its sender's name, at most one
// a second after the first ten) and refused (ErrBusy to the sender, or dropped
// when the sender asked for no answer).
type CastStats struct {
	Run     int64 `cbor:"run" json:"run"`
	Failed  int64 `cbor:"failed" json:"failed"`
	Refused int64 `cbor:"refused" json:"refused"`
}

// CastStats returns this node's cast counts.
func (b *Bus) CastStats() CastStats {
	return CastStats{Run: b.casts.run.Load(), Failed: b.casts.failed.Load(), Refused: b.casts.refused.Load()}
}

// admit takes room for a request of size bytes among the calls and casts this
// node holds, or returns ErrBusy. One request alone is always let in.
func (b *Bus) admit(size int) error {
	select {
	case b.sem <- struct{}{}:
	default:
		return fmt.Errorf("%w: node %s holds %d calls and casts (the most it takes)", ErrBusy, b.name, cap(b.sem))
	}
	if held := b.held.Add(int64(size)); held > b.maxHeld && held != int64(size) {
		b.held.Add(-int64(size))
		<-b.sem
		return fmt.Errorf("%w: node %s holds %d bytes of calls and casts (bound %d)", ErrBusy, b.name, held-int64(size), b.maxHeld)
	}
	return nil
}

func (b *Bus) release(size int) {
	b.held.Add(-int64(size))
	<-b.sem
}

// Result is one node's answer in a Multicall.
type Result struct {
	Node  string
	Value []byte // CBOR, when Err is nil
	Err   error
}

// Multicall calls every node in parallel and waits for all, like Erlang's
// rpc:multicall: results holds an entry for each node that answered (a value or
// the error it raised), in the order of nodes; bad lists the nodes that were
// down, unreachable or timed out.
func (b *Bus) Multicall(ctx context.Context, nodes []string, module, function string, args []byte) (results []Result, bad []string) {
	out := make([]Result, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := b.Call(ctx, n, module, function, args)
			out[i] = Result{Node: n, Value: v, Err: err}
		}()
	}
	wg.Wait()
	for _, r := range out {
		if errors.Is(r.Err, ErrNodeDown) || errors.Is(r.Err, ErrTimeout) || errors.Is(r.Err, ErrClosed) {
			bad = append(bad, r.Node)
			continue
		}
		results = append(results, r)
	}
	return results, bad
}

// onRequest serves a call from another node on its own goroutine, at most
// MaxInflight at once; beyond that the caller gets ErrBusy rather than a queue
// that grows without bound.
func (b *Bus) onRequest(m *nats.Msg) {
	var req request
	if err := decMode.Unmarshal(m.Data, &req); err != nil {
		b.log.Warn("malformed rpc request dropped", "err", err, "bytes", len(m.Data))
		b.respond(m, reply{Status: statusBusy, Message: "malformed request: " + err.Error()})
		return
	}
	if err := ModuleAllowed(b.cfg.AllowModules, req.Module); err != nil {
		b.log.Warn("remote call refused", "from", req.From, "module", req.Module, "function", req.Function)
		b.respond(m, reply{Status: statusBadRPC, Message: err.(*badRPCError).msg})
		return
	}
	cast := m.Reply == "" || m.Header.Get(castHeader) != ""
	size := len(m.Data)
	if err := b.admit(size); err != nil {
		if cast {
			n := b.casts.refused.Add(1)
			if m.Reply == "" { // its sender asked for no answer: say it here
				b.logCast("cast refused", &req, err, n)
			}
		}
		b.cfg.Metrics.RPCServed(metrics.Busy)
		b.respond(m, reply{Status: statusBusy, Message: strings.TrimPrefix(err.Error(), ErrBusy.Error()+": ")})
		return
	}
	if cast && m.Reply != "" {
		b.respond(m, reply{Status: statusOK, Value: cbor.RawMessage{0xf6}}) // queued
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer b.release(size)
		if cast {
			b.runCast(&req)
			return
		}
		b.serve(m, &req)
	}()
}

func (b *Bus) serve(m *nats.Msg, req *request) {
	ctx := b.ctx
	if req.Budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(min(req.Budget, maxBudget))*time.Millisecond)
		defer cancel()
	}
	if b.cfg.Handler == nil {
		b.respond(m, reply{Status: statusBadRPC, Message: "node " + b.name + " runs no Python"})
		return
	}
	v, err := b.cfg.Handler.Call(ctx, req.Module, req.Function, req.Args)
	b.cfg.Metrics.RPCServed(servedOutcome(ctx, err))
	var r reply
	var re *RemoteError
	switch {
	case err == nil:
		r = reply{Status: statusOK, Value: v}
	case errors.As(err, &re):
		r = reply{Status: statusRemote, Type: re.Type, Message: re.Message, Traceback: re.Traceback}
	case errors.Is(err, ErrBadRPC):
		msg := err.Error()
		var br *badRPCError
		if errors.As(err, &br) {
			msg = br.msg
		}
		r = reply{Status: statusBadRPC, Message: msg}
	case errors.Is(err, ErrPayloadTooLarge):
		r = reply{Status: statusBusy, Type: "payload", Message: err.Error()}
	case errors.Is(err, ErrBusy):
		r = reply{Status: statusBusy, Message: err.Error()}
	case ctx.Err() != nil:
		return // the caller's deadline passed: it has stopped waiting
	default:
		r = reply{Status: statusRemote, Type: "RuntimeError", Message: err.Error()}
	}
	b.respond(m, r)
}

func (b *Bus) respond(m *nats.Msg, r reply) {
	if m.Reply == "" {
		return
	}
	data, err := encMode.Marshal(&r)
	if err == nil && len(data) > b.maxPayload {
		data, err = encMode.Marshal(&reply{Status: statusBusy, Type: "payload",
			Message: fmt.Sprintf("the reply is %d bytes, over the %d-byte limit (--max-payload)", len(data), b.maxPayload)})
	}
	if err != nil {
		b.log.Error("encoding reply", "err", err)
		return
	}
	if err := m.Respond(data); err != nil {
		b.log.Debug("reply not sent", "err", err)
	}
}

// sys requests are answered in Go, so they work while Python is busy.
const (
	sysPing  = "ping"
	sysInfo  = "info"
	sysPeers = "peers" // the nodes this one hears, one name a line
)

func (b *Bus) onSys(m *nats.Msg) {
	switch string(m.Data) {
	case sysPing:
		m.Respond([]byte("pong"))
	case sysMembers:
		b.onSysMembers(m)
	case sysPeers:
		m.Respond([]byte(strings.Join(b.Nodes(Connected), "\n")))
	case sysInfo:
		var info any = map[string]any{"name": b.name, "roles": b.cfg.Roles, "hidden": b.cfg.Hidden}
		if b.cfg.Info != nil {
			ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
			info = b.cfg.Info(ctx)
			cancel()
		}
		data, err := encMode.Marshal(info)
		if err != nil {
			b.log.Error("encoding node info", "err", err)
			return
		}
		m.Respond(data)
	}
}

// probe asks node's Go side for a pong within timeout.
func (b *Bus) probe(node string, timeout time.Duration) bool {
	ok, _ := b.probeGone(node, timeout)
	return ok
}

// probeGone is probe that also says when nothing listens for node (its
// process is gone), as opposed to no answer in time.
func (b *Bus) probeGone(node string, timeout time.Duration) (ok, gone bool) {
	msg, err := b.mc.Request(b.sysSubject(node), []byte(sysPing), timeout)
	return err == nil && string(msg.Data) == "pong", errors.Is(err, nats.ErrNoResponders)
}

// Ping reports whether node answers, like net_adm:ping: a hidden node or one
// not yet seen counts too.
func (b *Bus) Ping(ctx context.Context, node string) bool {
	if node == b.name {
		return true
	}
	if _, err := LongName(node); err != nil {
		return false
	}
	b.reachByName(ctx, node)
	timeout := time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	ok := b.probe(node, timeout)
	if ok {
		b.members.connected(node)
	}
	return ok
}

// Info returns node's resources and roles as the CBOR its Info function made.
func (b *Bus) Info(ctx context.Context, node string) ([]byte, error) {
	if node == b.name {
		var info any = map[string]any{"name": b.name, "roles": b.cfg.Roles, "hidden": b.cfg.Hidden}
		if b.cfg.Info != nil {
			info = b.cfg.Info(ctx)
		}
		return cbor.Marshal(info)
	}
	msg, err := b.mc.RequestWithContext(ctx, b.sysSubject(node), []byte(sysInfo))
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, &CallError{Node: node, Module: "node_info", Err: ErrNodeDown}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return nil, &CallError{Node: node, Module: "node_info", Err: ErrTimeout}
	case err != nil:
		return nil, &CallError{Node: node, Module: "node_info", Err: err}
	}
	return msg.Data, nil
}
