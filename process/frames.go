package process

import (
	"context"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Frames between the tables of two nodes: one CBOR array each, decoded with
// limits (a peer may send anything). From is the sending node, set by
// sendRemote.
type frame struct {
	_      struct{} `cbor:",toarray"`
	Kind   int
	From   string
	ID     uint64   // the process on the receiving node
	IDs    []uint64 // fSendMany
	Name   string   // a registered name or a group
	Pid    Pid      // the process on the sending node
	Ref    string
	Reason string
	Msg    cbor.RawMessage
	Groups map[string][]uint64
	Flag   bool // fExit: from a link
	Module string
	Func   string
}

const (
	fSend = iota + 1
	fSendName
	fSendMany
	fMonitor
	fDemonitor
	fDown
	fLink
	fUnlink
	fExit
	fPgJoin
	fPgLeave
	fPgSync
	fPgHello
	// Requests, answered with a reply.
	fSpawn
	fAlive
	fCall
	fCancel // one-way: cancel a call
)

func (t *Table) sendRemote(node string, f frame) error {
	tr := t.transport()
	if tr == nil {
		return nil // not in a cluster: as a message to a dead process
	}
	f.From = t.cfg.Node
	data, err := encMode.Marshal(&f)
	if err != nil {
		return fmt.Errorf("process: encoding a message for %s: %w", node, err)
	}
	return tr.Send(node, data)
}

// HandleFrame applies a frame sent by another node's table. It never blocks.
func (t *Table) HandleFrame(data []byte) {
	var f frame
	if err := decMode.Unmarshal(data, &f); err != nil {
		t.log.Warn("malformed process frame dropped", "err", err, "bytes", len(data))
		return
	}
	if f.From == "" || f.From == t.cfg.Node {
		return
	}
	switch f.Kind {
	case fSend:
		t.deliverRemote(f.From, f.ID, f.Msg)
	case fSendMany:
		for _, id := range f.IDs {
			t.deliverRemote(f.From, id, f.Msg)
		}
	case fCancel:
		t.cancelServed(f.From, f.ID)
	case fSendName:
		t.mu.RLock()
		p := t.names[f.Name]
		t.mu.RUnlock()
		if p != nil {
			t.deliverRemote(f.From, p.id, f.Msg)
		}
	default:
		t.mu.Lock()
		defer t.mu.Unlock()
		t.control(&f)
	}
}

func (t *Table) deliverRemote(from string, id uint64, msg []byte) {
	p := t.live(id)
	if p == nil {
		return
	}
	// msg is a view of the frame, which the caller lets go of: one copy,
	// exactly the message's size, stays in the mailbox.
	if err := t.push(p, append([]byte(nil), msg...)); err != nil && !errors.Is(err, ErrNoProc) {
		t.dropRemote(from, t.pid(p), err)
	}
}

// control applies a signal frame. Caller holds t.mu.
func (t *Table) control(f *frame) {
	if f.Pid.Node != "" && f.Pid.Node != f.From {
		t.log.Warn("process frame dropped: its pid is not of its sender", "from", f.From, "pid", f.Pid.String())
		return
	}
	p := t.procs[f.ID]
	if p != nil && p.isDead() {
		p = nil
	}
	self := Pid{Node: t.cfg.Node, ID: f.ID}
	switch f.Kind {
	case fMonitor:
		if p == nil {
			t.sendRemote(f.From, frame{Kind: fDown, ID: f.Pid.ID, Ref: f.Ref, Pid: self, Reason: "noproc"})
			return
		}
		if p.watchers == nil {
			p.watchers = map[string]Pid{}
		}
		p.watchers[f.Ref] = f.Pid
	case fDemonitor:
		if p != nil {
			delete(p.watchers, f.Ref)
		}
	case fDown:
		if wp := t.procs[f.ID]; wp != nil {
			t.deliverDown(Pid{Node: t.cfg.Node, ID: f.ID}, f.Ref, f.Pid, f.Reason, false)
		}
	case fLink:
		if p == nil {
			t.sendRemote(f.From, frame{Kind: fExit, ID: f.Pid.ID, Pid: self, Reason: "noproc", Flag: true})
			return
		}
		addLink(p, f.Pid)
	case fUnlink:
		if p != nil {
			delete(p.links, f.Pid)
		}
	case fExit:
		if p != nil {
			t.exitSignalLocked(p, f.Pid, f.Reason, f.Flag)
		}
	case fPgJoin:
		t.addMember(f.Name, Pid{Node: f.From, ID: f.ID})
	case fPgLeave:
		t.leaveLocked(f.Name, Pid{Node: f.From, ID: f.ID}, false)
	case fPgSync:
		t.syncFrom(f.From, f.Groups)
	case fPgHello:
		t.sendRemote(f.From, frame{Kind: fPgSync, Groups: t.localGroups()})
	default:
		t.log.Warn("process frame of unknown kind dropped", "from", f.From, "kind", f.Kind)
	}
}

// HandleRequest answers a request frame from another node (spawn,
// is_alive). It may block (a spawn starts Python code): run it on a goroutine.
func (t *Table) HandleRequest(ctx context.Context, data []byte) []byte {
	var f frame
	if err := decMode.Unmarshal(data, &f); err != nil {
		return replyErr("ValueError", "malformed process request: "+err.Error())
	}
	switch f.Kind {
	case fCall:
		if f.From == "" {
			return replyErr("ValueError", "call from no node")
		}
		return t.serveCall(ctx, &f)
	case fAlive:
		ok, _ := t.IsAlive(ctx, Pid{Node: t.cfg.Node, ID: f.ID})
		b, _ := encMode.Marshal(ok)
		return b
	case fSpawn:
		if t.cfg.Spawn == nil {
			return replyErr("hornbeam_erlang:BadRPC", "node "+t.cfg.Node+" runs no Python")
		}
		var link *Pid
		if f.Pid.Node != "" {
			if f.Pid.Node != f.From {
				return replyErr("ValueError", "spawn_link: the linked pid is not of the requesting node")
			}
			link = &f.Pid
		}
		pid, err := t.cfg.Spawn(ctx, f.Module, f.Func, f.Msg, link)
		if err != nil {
			class := "RuntimeError"
			var pe interface{ PythonClass() string }
			if errors.As(err, &pe) {
				class = pe.PythonClass()
			}
			return replyErr(class, err.Error())
		}
		b, _ := encMode.Marshal([]any{true, pid, ""})
		return b
	}
	return replyErr("ValueError", fmt.Sprintf("unknown process request kind %d", f.Kind))
}

func replyErr(class, msg string) []byte {
	b, _ := encMode.Marshal([]any{false, class, msg})
	return b
}

// RemoteError is a spawn refused by the other node, with the Python class
// it named.
type RemoteError struct{ Class, Message string }

func (e *RemoteError) Error() string       { return e.Message }
func (e *RemoteError) PythonClass() string { return e.Class }

// Spawn asks node to run module.function(*args) (args: a CBOR array) as a
// new process; link, when not nil, is a local process linked to it.
func (t *Table) Spawn(ctx context.Context, node, module, function string, args []byte, link *Pid) (Pid, error) {
	tr := t.transport()
	if tr == nil {
		return Pid{}, ErrClosed
	}
	f := frame{Kind: fSpawn, From: t.cfg.Node, Module: module, Func: function, Msg: args}
	if link != nil {
		f.Pid = *link
	}
	data, err := encMode.Marshal(&f)
	if err != nil {
		return Pid{}, fmt.Errorf("process: encoding spawn: %w", err)
	}
	r, err := tr.Request(ctx, node, data)
	if err != nil {
		return Pid{}, err
	}
	var rep struct {
		_   struct{} `cbor:",toarray"`
		OK  bool
		Val cbor.RawMessage
		Msg string
	}
	if err := decMode.Unmarshal(r, &rep); err != nil {
		return Pid{}, fmt.Errorf("process: bad spawn reply from %s: %w", node, err)
	}
	if !rep.OK {
		var class string
		decMode.Unmarshal(rep.Val, &class)
		return Pid{}, &RemoteError{Class: class, Message: rep.Msg}
	}
	var pid Pid
	if err := pid.UnmarshalCBOR(rep.Val); err != nil {
		return Pid{}, err
	}
	if link != nil {
		t.mu.Lock()
		if lp := t.procs[link.ID]; lp != nil && !lp.isDead() {
			addLink(lp, pid)
		}
		t.mu.Unlock()
	}
	return pid, nil
}
