package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Errors the table returns; host maps them to Python exceptions.
var (
	// ErrNoProc: no live process with that pid (or name) on this node.
	ErrNoProc = errors.New("no such process")
	// ErrBusy: the receiver's mailbox is at its message or byte limit.
	ErrBusy = errors.New("mailbox full")
	// ErrTimeout: receive's timeout passed with no (matching) message.
	ErrTimeout = errors.New("receive timed out")
	// ErrLimit: the node runs its maximum of thread processes.
	ErrLimit = errors.New("too many processes")
	// ErrName: a name that cannot be registered (taken, or the process has one).
	ErrName = errors.New("bad name")
	// ErrClosed: the node is stopping.
	ErrClosed = errors.New("node is stopping")
)

// ExitError is what a process's receive returns once an exit signal has
// ended it: Reason is the signal's reason ("shutdown" when the node stops).
type ExitError struct{ Reason string }

func (e *ExitError) Error() string { return "process exited: " + e.Reason }

// Kind is how a process runs.
type Kind int

const (
	// Task: a coroutine function on the node's event loop.
	Task Kind = iota
	// Thread: a synchronous function on a thread of its own; counted
	// against Limits.MaxThreads.
	Thread
	// Adopted: a thread or task that was not spawned (a script's main
	// thread, an HTTP handler) and asked for its pid.
	Adopted
)

// Limits bound a node's processes.
type Limits struct {
	MaxMessages int // messages waiting in one mailbox; 0 = DefaultMaxMessages
	MaxBytes    int // bytes of messages waiting in one mailbox; 0 = DefaultMaxBytes
	MaxThreads  int // thread processes alive at once; 0 = DefaultMaxThreads
}

// Defaults for Limits fields left zero.
const (
	DefaultMaxMessages = 100_000
	DefaultMaxBytes    = 64 << 20
	DefaultMaxThreads  = 1024
)

// Transport carries frames to the tables of other nodes.
type Transport interface {
	// Send publishes frame to node without waiting; frames from one sender
	// to one node arrive in the order sent.
	Send(node string, frame []byte) error
	// Request sends frame and waits for the reply.
	Request(ctx context.Context, node string, frame []byte) ([]byte, error)
	// Up reports whether node is a live member.
	Up(node string) bool
	// Peers lists the live members, hidden ones included.
	Peers() []string
}

// SpawnFunc starts module.function(*args) here for another node's spawn; link,
// when not nil, is linked to the new process before it runs.
type SpawnFunc func(ctx context.Context, module, function string, args []byte, link *Pid) (Pid, error)

// Config configures a Table.
type Config struct {
	Node   string
	Limits Limits
	// Spawn serves spawn requests from other nodes.
	Spawn SpawnFunc
	// Call serves cancellable calls from other nodes.
	Call CallFunc
	// Spin is how long a receive with an empty mailbox polls for a message
	// before it sleeps (one receiver at a time spins): waking a sleeping
	// thread costs tens of µs on these machines, a message between nodes
	// about as much. 0 sleeps at once.
	Spin time.Duration
	// Killed is told when an exit signal ends a Task process, so that the task
	// is cancelled; it must not block.
	Killed func(id uint64, reason string)
	Logger *slog.Logger
}

type entry struct {
	seq  uint64
	data []byte
}

// waiter is the one receive a process may have waiting; fire is called
// exactly once, by whoever takes the waiter out of proc.w.
type waiter struct {
	after uint64
	fire  func(ok bool, err error)
	timer *time.Timer
}

type proc struct {
	id   uint64
	kind Kind

	mu     sync.Mutex    // guards the mailbox, w, dead and reason
	pushed atomic.Uint64 // the last seq queued, for a spinning receiver
	q      []entry
	head   int
	bytes  int
	seq    uint64
	w      *waiter
	dead   bool
	reason string

	// Guarded by Table.mu.
	name     string
	trap     bool
	links    map[Pid]struct{}
	watchers map[string]Pid // monitors on this process: ref -> watcher
	watching map[string]Pid // monitors this process holds: ref -> target
	groups   map[string]struct{}
}

// Table is a node's processes.
type Table struct {
	cfg Config
	log *slog.Logger
	tr  atomic.Pointer[transportBox]

	mu      sync.RWMutex
	procs   map[uint64]*proc
	names   map[string]*proc
	groups  map[string]map[Pid]struct{}
	next    uint64
	threads int
	closed  bool

	calls calls

	spinning atomic.Bool
	refs     atomic.Uint64
	dropped  atomic.Uint64
	lastLog  atomic.Int64
}

type transportBox struct{ t Transport }

// New makes an empty table.
func New(cfg Config) *Table {
	if cfg.Limits.MaxMessages <= 0 {
		cfg.Limits.MaxMessages = DefaultMaxMessages
	}
	if cfg.Limits.MaxBytes <= 0 {
		cfg.Limits.MaxBytes = DefaultMaxBytes
	}
	if cfg.Limits.MaxThreads <= 0 {
		cfg.Limits.MaxThreads = DefaultMaxThreads
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Table{cfg: cfg, log: cfg.Logger, procs: map[uint64]*proc{}, names: map[string]*proc{},
		groups: map[string]map[Pid]struct{}{}}
	t.calls.init()
	return t
}

// SetTransport connects the table to the cluster.
func (t *Table) SetTransport(tr Transport) { t.tr.Store(&transportBox{tr}) }

func (t *Table) transport() Transport {
	if b := t.tr.Load(); b != nil {
		return b.t
	}
	return nil
}

// Node returns the node the table's pids name.
func (t *Table) Node() string { return t.cfg.Node }

// Limits returns the table's limits, defaults filled in.
func (t *Table) Limits() Limits { return t.cfg.Limits }

// New creates a process of kind, linked to link when not nil.
func (t *Table) New(kind Kind, link *Pid) (Pid, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return Pid{}, ErrClosed
	}
	if kind == Thread {
		if t.threads >= t.cfg.Limits.MaxThreads {
			return Pid{}, fmt.Errorf("%w: %d thread processes are running (--max-processes)", ErrLimit, t.threads)
		}
		t.threads++
	}
	t.next++
	p := &proc{id: t.next, kind: kind}
	t.procs[p.id] = p
	pid := t.pid(p)
	if link != nil {
		t.linkLocked(p, *link, false)
	}
	return pid, nil
}

func (t *Table) pid(p *proc) Pid { return Pid{Node: t.cfg.Node, ID: p.id} }

// Exit ends process id with reason, as its body returning or raising does:
// monitors get DOWN, links an exit signal, names and groups let go of it.
func (t *Table) Exit(id uint64, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procs[id]
	if p == nil {
		return
	}
	t.killLocked(p, reason, false)
	delete(t.procs, id)
	if p.kind == Thread {
		t.threads--
	}
}

// Discard removes a process that never ran (its spawn failed), with no
// signals to anyone.
func (t *Table) Discard(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procs[id]
	if p == nil {
		return
	}
	p.links, p.watchers = nil, nil
	t.killLocked(p, "normal", false)
	delete(t.procs, id)
	if p.kind == Thread {
		t.threads--
	}
}

// live returns the live local process id, or nil.
func (t *Table) live(id uint64) *proc {
	t.mu.RLock()
	p := t.procs[id]
	t.mu.RUnlock()
	if p == nil {
		return nil
	}
	return p
}

// push queues data in p's mailbox. A dead process drops it (as Erlang does).
func (t *Table) push(p *proc, data []byte) error {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return ErrNoProc
	}
	if len(p.q)-p.head >= t.cfg.Limits.MaxMessages || p.bytes+len(data) > t.cfg.Limits.MaxBytes {
		n, b := len(p.q)-p.head, p.bytes
		p.mu.Unlock()
		return fmt.Errorf("%w: %s holds %d messages, %d bytes (limits %d, %d)", ErrBusy,
			t.pid(p), n, b, t.cfg.Limits.MaxMessages, t.cfg.Limits.MaxBytes)
	}
	p.seq++
	p.pushed.Store(p.seq)
	p.q = append(p.q, entry{seq: p.seq, data: data})
	p.bytes += len(data)
	var w *waiter
	if p.w != nil && p.seq > p.w.after {
		w, p.w = p.w, nil
	}
	p.mu.Unlock()
	if w != nil {
		w.stopTimer()
		w.fire(true, nil)
	}
	return nil
}

func (w *waiter) stopTimer() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// first returns the index of the first message with a seq above after, or -1.
// Caller holds p.mu.
func (p *proc) first(after uint64) int {
	q := p.q[p.head:]
	i := sort.Search(len(q), func(i int) bool { return q[i].seq > after })
	if i == len(q) {
		return -1
	}
	return p.head + i
}

// remove takes message i out of the mailbox. Caller holds p.mu.
func (p *proc) remove(i int) {
	p.bytes -= len(p.q[i].data)
	if i == p.head {
		p.q[i] = entry{}
		p.head++
	} else {
		copy(p.q[i:], p.q[i+1:])
		p.q[len(p.q)-1] = entry{}
		p.q = p.q[:len(p.q)-1]
	}
	switch {
	case p.head == len(p.q):
		// Empty: a mailbox that once held many messages gives the memory back.
		if cap(p.q) > 64 {
			p.q = nil
		} else {
			p.q = p.q[:0]
		}
		p.head = 0
	case p.head > 64 && p.head*2 > len(p.q):
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q = p.q[:n]
		p.head = 0
	}
}

// Receive returns the first message of process id with a seq above after,
// waiting up to timeout (negative: no limit) for one; take removes it from
// the mailbox. It returns an *ExitError once the process has been ended by
// an exit signal, ErrTimeout, or ctx's error.
func (t *Table) Receive(ctx context.Context, id, after uint64, take bool, timeout time.Duration) (uint64, []byte, error) {
	p := t.live(id)
	if p == nil {
		return 0, nil, &ExitError{Reason: "noproc"}
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	var ch chan struct{}
	for {
		p.mu.Lock()
		if p.dead {
			r := p.reason
			p.mu.Unlock()
			return 0, nil, &ExitError{Reason: r}
		}
		if i := p.first(after); i >= 0 {
			e := p.q[i]
			if take {
				p.remove(i)
			}
			p.mu.Unlock()
			return e.seq, e.data, nil
		}
		if timeout == 0 {
			p.mu.Unlock()
			return 0, nil, ErrTimeout
		}
		if ch == nil && t.cfg.Spin > 0 {
			// Before the first sleep, poll a moment: the answer to a message
			// just sent often comes within a wake-up's cost.
			last := p.seq
			p.mu.Unlock()
			if t.spin(p, last) {
				continue
			}
			p.mu.Lock()
			if p.seq != last || p.dead {
				p.mu.Unlock()
				continue
			}
		}
		if ch == nil {
			ch = make(chan struct{}, 1)
		}
		w := &waiter{after: after, fire: func(bool, error) { ch <- struct{}{} }}
		old := p.w
		p.w = w
		p.mu.Unlock()
		if old != nil {
			old.stopTimer()
			old.fire(false, nil)
		}
		select {
		case <-ch:
			continue
		case <-deadline:
		case <-ctx.Done():
		}
		p.mu.Lock()
		mine := p.w == w
		if mine {
			p.w = nil
		}
		p.mu.Unlock()
		if !mine {
			<-ch // fired meanwhile: look once more
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		return 0, nil, ErrTimeout
	}
}

// spin polls p for a message after seq last for up to cfg.Spin; one
// receiver of the table spins at a time, so idle processes cost no CPU.
func (t *Table) spin(p *proc, last uint64) bool {
	if !t.spinning.CompareAndSwap(false, true) {
		return false
	}
	defer t.spinning.Store(false)
	deadline := time.Now().Add(t.cfg.Spin)
	for i := 0; ; i++ {
		if p.pushed.Load() != last {
			return true
		}
		// No Gosched: the receiving goroutine is locked to a Python thread,
		// and yielding would hand its OS thread off (a futex round trip).
		if i%64 == 63 && time.Now().After(deadline) {
			return false
		}
	}
}

// Wait calls done(true, nil) once process id has a message with a seq above
// after, done(false, nil) after timeout (negative: no limit), or done(false,
// *ExitError) when the process is ended. It keeps no goroutine: done runs on
// the goroutine of the sender, the timer or the signal. A newer Wait for the
// same process replaces this one (done(false, nil)).
func (t *Table) Wait(id, after uint64, timeout time.Duration, done func(ok bool, err error)) {
	p := t.live(id)
	if p == nil {
		done(false, &ExitError{Reason: "noproc"})
		return
	}
	p.mu.Lock()
	if p.dead {
		r := p.reason
		p.mu.Unlock()
		done(false, &ExitError{Reason: r})
		return
	}
	if p.first(after) >= 0 || timeout == 0 {
		ok := p.first(after) >= 0
		p.mu.Unlock()
		done(ok, nil)
		return
	}
	w := &waiter{after: after, fire: done}
	old := p.w
	p.w = w
	if timeout > 0 {
		w.timer = time.AfterFunc(timeout, func() {
			p.mu.Lock()
			mine := p.w == w
			if mine {
				p.w = nil
			}
			p.mu.Unlock()
			if mine {
				w.fire(false, nil)
			}
		})
	}
	p.mu.Unlock()
	if old != nil {
		old.stopTimer()
		old.fire(false, nil)
	}
}

// Take removes message seq from process id's mailbox; false if it is not there.
func (t *Table) Take(id, seq uint64) bool {
	p := t.live(id)
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.first(seq - 1)
	if i < 0 || p.q[i].seq != seq {
		return false
	}
	p.remove(i)
	return true
}

// Send delivers msg (CBOR) to pid: queued here, or sent to its node. A
// message to a process that is gone is dropped, as in Erlang; a full local
// mailbox is ErrBusy.
func (t *Table) Send(to Pid, msg []byte) error {
	if to.Node != t.cfg.Node {
		return t.sendRemote(to.Node, frame{Kind: fSend, ID: to.ID, Msg: msg})
	}
	p := t.live(to.ID)
	if p == nil {
		return nil
	}
	if err := t.push(p, msg); err != nil && !errors.Is(err, ErrNoProc) {
		return err
	}
	return nil
}

// SendName delivers msg to the process registered as name on node ("" or
// this node: here, where an unknown name is ErrNoProc; another node drops it
// silently if the name is unknown there).
func (t *Table) SendName(name, node string, msg []byte) error {
	if node != "" && node != t.cfg.Node {
		return t.sendRemote(node, frame{Kind: fSendName, Name: name, Msg: msg})
	}
	t.mu.RLock()
	p := t.names[name]
	t.mu.RUnlock()
	if p == nil {
		return fmt.Errorf("%w: no process is registered as %q", ErrNoProc, name)
	}
	if err := t.push(p, msg); err != nil && !errors.Is(err, ErrNoProc) {
		return err
	}
	return nil
}

// IsAlive reports whether pid is a live process (asking its node if remote).
func (t *Table) IsAlive(ctx context.Context, pid Pid) (bool, error) {
	if pid.Node != t.cfg.Node {
		tr := t.transport()
		if tr == nil || !tr.Up(pid.Node) {
			return false, nil
		}
		data, err := encMode.Marshal(&frame{Kind: fAlive, From: t.cfg.Node, ID: pid.ID})
		if err != nil {
			return false, err
		}
		r, err := tr.Request(ctx, pid.Node, data)
		if err != nil {
			return false, err
		}
		var alive bool
		if err := decMode.Unmarshal(r, &alive); err != nil {
			return false, fmt.Errorf("process: bad is_alive reply from %s: %w", pid.Node, err)
		}
		return alive, nil
	}
	p := t.live(pid.ID)
	if p == nil {
		return false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.dead, nil
}

// Register names a live local process.
func (t *Table) Register(name string, pid Pid) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrName)
	}
	if pid.Node != t.cfg.Node {
		return fmt.Errorf("%w: %s is not a process of this node", ErrName, pid)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procs[pid.ID]
	if p == nil || p.isDead() {
		return fmt.Errorf("%w: %s", ErrNoProc, pid)
	}
	if q := t.names[name]; q != nil {
		return fmt.Errorf("%w: %q is already registered to %s", ErrName, name, t.pid(q))
	}
	if p.name != "" {
		return fmt.Errorf("%w: %s is already registered as %q", ErrName, pid, p.name)
	}
	p.name = name
	t.names[name] = p
	return nil
}

func (p *proc) isDead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// Unregister removes name; false if it was not registered.
func (t *Table) Unregister(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.names[name]
	if p == nil {
		return false
	}
	delete(t.names, name)
	p.name = ""
	return true
}

// Whereis returns the pid registered as name.
func (t *Table) Whereis(name string) (Pid, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p := t.names[name]
	if p == nil {
		return Pid{}, false
	}
	return t.pid(p), true
}

// Registered lists the registered names, sorted.
func (t *Table) Registered() []string {
	t.mu.RLock()
	out := make([]string, 0, len(t.names))
	for n := range t.names {
		out = append(out, n)
	}
	t.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Stats are a table's counters.
type Stats struct {
	Processes int    `cbor:"processes"`
	Threads   int    `cbor:"thread_processes"`
	Dropped   uint64 `cbor:"mailbox_dropped"`
	Queued    int    `cbor:"messages_queued"`
}

// Stats counts processes and the messages from other nodes dropped at full
// mailboxes.
func (t *Table) Stats() Stats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := Stats{Processes: len(t.procs), Threads: t.threads, Dropped: t.dropped.Load()}
	for _, p := range t.procs {
		p.mu.Lock()
		s.Queued += len(p.q) - p.head
		p.mu.Unlock()
	}
	return s
}

// Close ends every process with reason "shutdown": waiting receives return
// at once, monitors and links fire. Later calls get ErrClosed.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	ids := make([]uint64, 0, len(t.procs))
	for id := range t.procs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		t.killLocked(t.procs[id], "shutdown", true)
	}
}

// dropRemote counts (and logs, at most once a second) a message from another
// node that could not be queued.
func (t *Table) dropRemote(from string, to Pid, err error) {
	n := t.dropped.Add(1)
	now := time.Now().UnixNano()
	last := t.lastLog.Load()
	if now-last > int64(time.Second) && t.lastLog.CompareAndSwap(last, now) {
		t.log.Warn("message from another node dropped", "from", from, "to", to.String(), "err", err, "dropped_total", n)
	}
}
