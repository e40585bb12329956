package bus

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Membership: every node publishes a heartbeat every Heartbeat interval. A node
// silent for three intervals is probed directly; it is down when the probe finds
// no responder (its process is gone: within about half a second of a kill -9)
// or gets no answer in two intervals (hung, stopped or cut off). A probe answered
// keeps it up, so a busy machine that delays heartbeats causes no false nodedown.

// Event is a change in membership.
type Event struct {
	Kind   string // "nodeup" or "nodedown"
	Node   string
	Reason string // for nodedown: "shutdown", "no heartbeat", "restarted", "disconnected", "unreachable"
	// Seq numbers events in order, from 1; see Bus.EventSeq.
	Seq uint64
}

// NodeKind selects nodes for Nodes.
type NodeKind int

const (
	Visible   NodeKind = iota // up and not hidden, like Erlang's nodes()
	Hidden                    // up and hidden
	Connected                 // every up node
)

type member struct {
	name        string
	incarnation uint64
	hidden      bool
	roles       []string
	caps        map[string]float64
	addr        string
	lastSeen    time.Time
	up          bool
	probing     bool
}

type members struct {
	b            *Bus
	mu           sync.Mutex
	m            map[string]*member
	disconnected map[string]bool
	watchers     map[int]func(Event)
	nextWatcher  int
	events       chan Event
	clash        bool // a heartbeat carried our name from another process
	seq          uint64
	// caps is what this node announces; SetCapabilities replaces it while
	// heartbeats read it, hence a pointer swapped whole.
	caps atomic.Pointer[map[string]float64]
}

// maxQueuedEvents bounds the membership events waiting for watchers.
const maxQueuedEvents = 4096

func newMembers(b *Bus) *members {
	ms := &members{
		b:            b,
		m:            map[string]*member{},
		disconnected: map[string]bool{},
		watchers:     map[int]func(Event){},
		events:       make(chan Event, maxQueuedEvents),
	}
	caps := maps.Clone(b.cfg.Capabilities)
	ms.caps.Store(&caps)
	return ms
}

func (ms *members) start() error {
	sub, err := ms.b.mc.Subscribe(ms.b.hbSubject(), ms.onBeat)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	ms.b.subs = append(ms.b.subs, sub)
	ms.b.wg.Add(2)
	go ms.loop()
	go ms.dispatch()
	return nil
}

func (ms *members) heartbeat(leaving bool) []byte {
	data, _ := encMode.Marshal(&heartbeat{
		Name: ms.b.name, Incarnation: ms.b.incarnation, Hidden: ms.b.cfg.Hidden,
		Roles: ms.b.cfg.Roles, Addr: ms.b.ClusterAddr(), Leaving: leaving, Caps: *ms.caps.Load(),
	})
	return data
}

func (ms *members) beat() {
	if ms.b.announced.Load() {
		ms.b.mc.Publish(ms.b.hbSubject(), ms.heartbeat(false))
	}
}

func (ms *members) leave() {
	if ms.b.announced.Load() && ms.b.mc != nil && ms.b.mc.IsConnected() {
		ms.b.mc.Publish(ms.b.hbSubject(), ms.heartbeat(true))
		ms.b.mc.FlushTimeout(time.Second)
	}
}

// loop beats and checks for silent members until the bus closes.
func (ms *members) loop() {
	defer ms.b.wg.Done()
	hb := ms.b.cfg.Heartbeat
	beat := time.NewTicker(hb)
	check := time.NewTicker(hb / 2)
	defer beat.Stop()
	defer check.Stop()
	for {
		select {
		case <-ms.b.ctx.Done():
			return
		case <-beat.C:
			ms.beat()
		case <-check.C:
			ms.check(3 * hb)
		}
	}
}

func (ms *members) check(silence time.Duration) {
	now := time.Now()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, m := range ms.m {
		if !m.up || m.probing || now.Sub(m.lastSeen) < silence {
			continue
		}
		m.probing = true
		inc := m.incarnation
		name := m.name
		ms.b.wg.Add(1)
		go func() {
			defer ms.b.wg.Done()
			// A node whose answer waits behind payloads on a busy route is
			// alive: the probe is repeated with longer waits before the node
			// is declared down (about 4 s after its last heartbeat); one
			// whose process is gone finds no responder at once.
			ok := false
			for _, wait := range []time.Duration{2 * ms.b.cfg.Heartbeat, time.Second, 2 * time.Second} {
				var gone bool
				if ok, gone = ms.b.probeGone(name, wait); ok || gone || ms.b.ctx.Err() != nil {
					break
				}
				if ms.heardSince(name, inc, now) {
					ok = true
					break
				}
			}
			ms.mu.Lock()
			defer ms.mu.Unlock()
			m := ms.m[name]
			if m == nil || m.incarnation != inc {
				return
			}
			m.probing = false
			if ok {
				m.lastSeen = time.Now()
				return
			}
			ms.downLocked(m, "no heartbeat")
		}()
	}
}

func (ms *members) onBeat(msg *nats.Msg) {
	var hb heartbeat
	if err := decMode.Unmarshal(msg.Data, &hb); err != nil {
		ms.b.log.Warn("malformed heartbeat dropped", "err", err)
		return
	}
	if _, err := LongName(hb.Name); err != nil {
		return
	}
	if hb.Name == ms.b.name {
		// A worker hears its own node's supervisor.
		if ms.b.cfg.Mode != Worker && hb.Incarnation != ms.b.incarnation {
			ms.b.log.Error("another node uses this node's name", "other", hb.Addr)
			ms.mu.Lock()
			ms.clash = true
			ms.mu.Unlock()
		}
		return
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.disconnected[hb.Name] {
		return
	}
	m := ms.m[hb.Name]
	if hb.Leaving {
		if m != nil && m.incarnation == hb.Incarnation {
			ms.downLocked(m, "shutdown")
		}
		return
	}
	if m != nil && m.up && m.incarnation != hb.Incarnation {
		ms.downLocked(m, "restarted")
	}
	if m == nil {
		m = &member{name: hb.Name}
		ms.m[hb.Name] = m
	}
	m.incarnation, m.hidden, m.roles, m.addr, m.caps = hb.Incarnation, hb.Hidden, hb.Roles, hb.Addr, hb.Caps
	m.lastSeen = time.Now()
	if !m.up {
		m.up, m.probing = true, false
		ms.emit(Event{Kind: "nodeup", Node: m.name})
		// Answer at once, so a newcomer sees us without waiting a full interval.
		ms.b.wg.Add(1)
		go func() { defer ms.b.wg.Done(); ms.beat() }()
	}
}

// downLocked marks m down, ends the calls waiting on it and tells the watchers.
func (ms *members) downLocked(m *member, reason string) {
	if !m.up {
		return
	}
	m.up = false
	if !m.hidden {
		ms.b.cfg.Metrics.NodeDown()
	}
	logPeer(ms.b.log, m.hidden, "nodedown", "peer", m.name, "reason", reason)
	go ms.b.failNode(m.name, fmt.Errorf("%w: %s went down (%s)", ErrNodeDown, m.name, reason))
	ms.emit(Event{Kind: "nodedown", Node: m.name, Reason: reason})
}

// emit runs with ms.mu held, so an event's Seq and the change it reports
// are seen together.
func (ms *members) emit(e Event) {
	ms.seq++
	e.Seq = ms.seq
	if e.Kind == "nodeup" {
		hidden := ms.m[e.Node] != nil && ms.m[e.Node].hidden
		logPeer(ms.b.log, hidden, "nodeup", "peer", e.Node)
	}
	select {
	case ms.events <- e:
	default:
		ms.b.log.Warn("membership event dropped: watchers too slow", "event", e.Kind, "peer", e.Node)
	}
}

func (ms *members) dispatch() {
	defer ms.b.wg.Done()
	for {
		select {
		case <-ms.b.ctx.Done():
			return
		case e := <-ms.events:
			ms.mu.Lock()
			ws := make([]func(Event), 0, len(ms.watchers))
			for _, w := range ms.watchers {
				ws = append(ws, w)
			}
			ms.mu.Unlock()
			for _, w := range ws {
				w(e)
			}
		}
	}
}

// noResponder reports that node's subject has no subscriber: it is gone.
func (ms *members) noResponder(node string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if m := ms.m[node]; m != nil {
		ms.downLocked(m, "unreachable")
	}
}

// heardWithin reports whether node is up and sent a heartbeat within d.
func (ms *members) heardWithin(node string, d time.Duration) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[node]
	return m != nil && m.up && time.Since(m.lastSeen) < d
}

// reachable fails fast for nodes known to be down or locally disconnected;
// nodes not yet seen are tried (they may have just joined).
func (ms *members) reachable(node string) error {
	if _, err := LongName(node); err != nil {
		return fmt.Errorf("%w: %v", ErrNodeDown, err)
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.disconnected[node] {
		return fmt.Errorf("%w: %s was disconnected", ErrNodeDown, node)
	}
	if m := ms.m[node]; m != nil && !m.up {
		return fmt.Errorf("%w: %s is down", ErrNodeDown, node)
	}
	return nil
}

func (ms *members) anyPeer() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, m := range ms.m {
		if m.up {
			return true
		}
	}
	return false
}

func (ms *members) nameClash() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.clash
}

func (ms *members) connected(node string) {
	ms.mu.Lock()
	delete(ms.disconnected, node)
	ms.mu.Unlock()
}

func (ms *members) disconnect(node string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.disconnected[node] = true
	if m := ms.m[node]; m != nil {
		ms.downLocked(m, "disconnected")
	}
}

// Nodes lists the up nodes of a kind, sorted by name; never this node.
func (b *Bus) Nodes(kind NodeKind) []string {
	ms := b.members
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := []string{}
	for _, m := range ms.m {
		if !m.up || (kind == Visible && m.hidden) || (kind == Hidden && !m.hidden) {
			continue
		}
		out = append(out, m.name)
	}
	slices.Sort(out)
	return out
}

// EventSeq returns the Seq of the latest membership event. A watcher added
// after reading it can ignore events up to it: what they report was already
// true when it read Nodes.
func (b *Bus) EventSeq() uint64 {
	b.members.mu.Lock()
	defer b.members.mu.Unlock()
	return b.members.seq
}

// Member is what a node announced about itself.
type Member struct {
	Name   string             `cbor:"name"`
	Hidden bool               `cbor:"hidden"`
	Roles  []string           `cbor:"roles"`
	Caps   map[string]float64 `cbor:"capabilities"`
}

// Members returns the up nodes of kind with what they announced, by name.
func (b *Bus) Members(kind NodeKind) []Member {
	ms := b.members
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := []Member{}
	for _, m := range ms.m {
		if !m.up || (kind == Visible && m.hidden) || (kind == Hidden && !m.hidden) {
			continue
		}
		out = append(out, Member{Name: m.name, Hidden: m.hidden, Roles: slices.Clone(m.roles), Caps: maps.Clone(m.caps)})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Roles returns the roles node announced, and whether it is up.
func (b *Bus) Roles(node string) ([]string, bool) {
	ms := b.members
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[node]
	if m == nil || !m.up {
		return nil, false
	}
	return slices.Clone(m.roles), true
}

// Watch calls fn with every membership event, in order, on one goroutine; fn
// must not block for long. The returned function stops the calls.
func (b *Bus) Watch(fn func(Event)) (stop func()) {
	ms := b.members
	ms.mu.Lock()
	id := ms.nextWatcher
	ms.nextWatcher++
	ms.watchers[id] = fn
	ms.mu.Unlock()
	return func() {
		ms.mu.Lock()
		delete(ms.watchers, id)
		ms.mu.Unlock()
	}
}

// Disconnect forgets node locally, as Erlang's disconnect_node: it leaves
// Nodes(), its calls fail with ErrNodeDown, and watchers see nodedown, until
// Connect or Ping reaches it again.
func (b *Bus) Disconnect(node string) bool {
	ms := b.members
	ms.mu.Lock()
	_, known := ms.m[node]
	ms.mu.Unlock()
	ms.disconnect(node)
	return known
}

// addrUp reports whether an up member announced addr as its cluster address.
func (ms *members) addrUp(addr string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, m := range ms.m {
		if m.up && m.addr == addr {
			return true
		}
	}
	return false
}

// Capabilities returns what this node announces about itself.
func (b *Bus) Capabilities() map[string]float64 {
	return maps.Clone(*b.members.caps.Load())
}

// SetCapabilities replaces what this node announces and sends a heartbeat at
// once, so that peers see the change without waiting an interval. A worker
// process does not heartbeat: its node's supervisor announces for it.
func (b *Bus) SetCapabilities(caps map[string]float64) error {
	if b.cfg.Mode == Worker {
		return errors.New("bus: a worker process cannot change its node's capabilities; start the node with --capability")
	}
	c := maps.Clone(caps)
	b.members.caps.Store(&c)
	b.members.beat()
	return nil
}

// heardSince reports whether node (this incarnation) sent a heartbeat after t.
func (ms *members) heardSince(node string, inc uint64, t time.Time) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[node]
	return m != nil && m.incarnation == inc && m.lastSeen.After(t)
}
