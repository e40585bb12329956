package process

import (
	"fmt"
)

// Monitors and links follow Erlang. Every structure below is guarded by
// Table.mu; messages to watchers are queued while it is held (lock order:
// Table.mu, then a proc's mu).

// downMsg is ('DOWN', ref, 'process', pid, reason).
func downMsg(ref string, pid Pid, reason string) []byte {
	b, _ := encMode.Marshal(Tuple("DOWN", ref, "process", pid, reason))
	return b
}

// exitMsg is ('EXIT', pid, reason).
func exitMsg(from Pid, reason string) []byte {
	b, _ := encMode.Marshal(Tuple("EXIT", from, reason))
	return b
}

// killLocked ends p with reason: its waiting receive returns, its mailbox is
// freed, and names, groups, monitors and links let go of it. p stays in
// t.procs (dead) until its owner calls Exit, so its receive can tell why.
// local is true when the whole node is stopping: nothing is sent to other
// nodes, which learn it from the node leaving.
func (t *Table) killLocked(p *proc, reason string, stopping bool) {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	p.dead, p.reason = true, reason
	w := p.w
	p.w = nil
	p.q, p.head, p.bytes = nil, 0, 0
	p.mu.Unlock()
	if w != nil {
		w.stopTimer()
		w.fire(false, &ExitError{Reason: reason})
	}
	self := t.pid(p)
	if p.name != "" {
		delete(t.names, p.name)
		p.name = ""
	}
	for g := range p.groups {
		t.leaveLocked(g, self, !stopping)
	}
	p.groups = nil
	for ref, w := range p.watchers {
		t.deliverDown(w, ref, self, reason, !stopping)
	}
	p.watchers = nil
	for ref, target := range p.watching {
		t.forgetMonitor(target, ref, !stopping)
	}
	p.watching = nil
	links := p.links
	p.links = nil
	for l := range links {
		if l.Node == t.cfg.Node {
			if lp := t.procs[l.ID]; lp != nil {
				delete(lp.links, self)
				t.exitSignalLocked(lp, self, reason, true)
			}
		} else if !stopping {
			t.sendRemote(l.Node, frame{Kind: fExit, ID: l.ID, Pid: self, Reason: reason, Flag: true})
		}
	}
	if p.kind == Task && t.cfg.Killed != nil && reason != "normal" {
		t.cfg.Killed(p.id, reason)
	}
}

func (t *Table) deliverDown(watcher Pid, ref string, target Pid, reason string, remote bool) {
	if watcher.Node != t.cfg.Node {
		if remote {
			t.sendRemote(watcher.Node, frame{Kind: fDown, ID: watcher.ID, Ref: ref, Pid: target, Reason: reason})
		}
		return
	}
	wp := t.procs[watcher.ID]
	if wp == nil {
		return
	}
	if _, ok := wp.watching[ref]; !ok {
		return // demonitored
	}
	delete(wp.watching, ref)
	if err := t.push(wp, downMsg(ref, target, reason)); err != nil && !isNoProc(err) {
		t.log.Warn("DOWN message dropped", "to", watcher.String(), "err", err)
	}
}

func (t *Table) forgetMonitor(target Pid, ref string, remote bool) {
	if target.Node == t.cfg.Node {
		if tp := t.procs[target.ID]; tp != nil {
			delete(tp.watchers, ref)
		}
		return
	}
	if remote {
		t.sendRemote(target.Node, frame{Kind: fDemonitor, ID: target.ID, Ref: ref})
	}
}

// exitSignalLocked delivers an exit signal from `from` to p: link is true for
// a linked process's end, false for exit(pid, reason).
func (t *Table) exitSignalLocked(p *proc, from Pid, reason string, link bool) {
	if p.isDead() {
		return
	}
	if link {
		delete(p.links, from)
	}
	switch {
	case !link && reason == "kill":
		t.killLocked(p, "killed", false)
	case p.trap:
		if err := t.push(p, exitMsg(from, reason)); err != nil && !isNoProc(err) {
			t.log.Warn("EXIT message dropped", "to", t.pid(p).String(), "err", err)
		}
	case reason == "normal":
	default:
		t.killLocked(p, reason, false)
	}
}

func isNoProc(err error) bool { return err == ErrNoProc }

// Monitor makes watcher (a local process) receive ('DOWN', ref, 'process',
// target, reason) when target ends, at once with 'noproc' if it is gone, or
// with 'noconnection' if its node is or goes down.
func (t *Table) Monitor(watcher, target Pid) (string, error) {
	ref := fmt.Sprintf("#Ref<%s.%d>", t.cfg.Node, t.refs.Add(1))
	t.mu.Lock()
	defer t.mu.Unlock()
	wp := t.procs[watcher.ID]
	if watcher.Node != t.cfg.Node || wp == nil || wp.isDead() {
		return "", fmt.Errorf("%w: the monitoring process %s", ErrNoProc, watcher)
	}
	if wp.watching == nil {
		wp.watching = map[string]Pid{}
	}
	wp.watching[ref] = target
	if target.Node == t.cfg.Node {
		tp := t.procs[target.ID]
		if tp == nil || tp.isDead() {
			t.deliverDown(watcher, ref, target, "noproc", false)
			return ref, nil
		}
		if tp.watchers == nil {
			tp.watchers = map[string]Pid{}
		}
		tp.watchers[ref] = watcher
		return ref, nil
	}
	if tr := t.transport(); tr == nil || !tr.Up(target.Node) {
		t.deliverDown(watcher, ref, target, "noconnection", false)
		return ref, nil
	}
	t.sendRemote(target.Node, frame{Kind: fMonitor, ID: target.ID, Pid: watcher, Ref: ref})
	return ref, nil
}

// Demonitor stops monitor ref of watcher; false if it was not active.
func (t *Table) Demonitor(watcher Pid, ref string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	wp := t.procs[watcher.ID]
	if wp == nil {
		return false
	}
	target, ok := wp.watching[ref]
	if !ok {
		return false
	}
	delete(wp.watching, ref)
	t.forgetMonitor(target, ref, true)
	return true
}

// Link links the local process a to b (both ways). If b is gone, a gets an
// exit signal with reason 'noproc' ('noconnection' if b's node is down).
func (t *Table) Link(a, b Pid) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	ap := t.procs[a.ID]
	if a.Node != t.cfg.Node || ap == nil || ap.isDead() {
		return fmt.Errorf("%w: %s", ErrNoProc, a)
	}
	t.linkLocked(ap, b, true)
	return nil
}

func (t *Table) linkLocked(ap *proc, b Pid, tell bool) {
	a := t.pid(ap)
	if a == b {
		return
	}
	if b.Node == t.cfg.Node {
		bp := t.procs[b.ID]
		if bp == nil || bp.isDead() {
			t.exitSignalLocked(ap, b, "noproc", true)
			return
		}
		addLink(ap, b)
		addLink(bp, a)
		return
	}
	addLink(ap, b)
	if !tell {
		return
	}
	if tr := t.transport(); tr == nil || !tr.Up(b.Node) {
		t.exitSignalLocked(ap, b, "noconnection", true)
		return
	}
	t.sendRemote(b.Node, frame{Kind: fLink, ID: b.ID, Pid: a})
}

func addLink(p *proc, other Pid) {
	if p.links == nil {
		p.links = map[Pid]struct{}{}
	}
	p.links[other] = struct{}{}
}

// Unlink removes the link between a and b, both ways.
func (t *Table) Unlink(a, b Pid) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ap := t.procs[a.ID]; ap != nil {
		delete(ap.links, b)
	}
	if b.Node == t.cfg.Node {
		if bp := t.procs[b.ID]; bp != nil {
			delete(bp.links, a)
		}
		return
	}
	t.sendRemote(b.Node, frame{Kind: fUnlink, ID: b.ID, Pid: a})
}

// TrapExit sets whether process id receives exit signals as ('EXIT', pid,
// reason) messages, and returns the previous setting.
func (t *Table) TrapExit(id uint64, on bool) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procs[id]
	if p == nil {
		return false, ErrNoProc
	}
	old := p.trap
	p.trap = on
	return old, nil
}

// ExitSignal sends exit(to, reason) from process from.
func (t *Table) ExitSignal(from, to Pid, reason string) {
	if to.Node != t.cfg.Node {
		t.sendRemote(to.Node, frame{Kind: fExit, ID: to.ID, Pid: from, Reason: reason})
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.procs[to.ID]; p != nil {
		t.exitSignalLocked(p, from, reason, false)
	}
}

// NodeDown ends what this node's processes hold on node: monitors get DOWN
// and linked processes an exit signal, both with 'noconnection' (or
// 'shutdown' when the node left in good order); its group members leave.
func (t *Table) NodeDown(node, why string) {
	reason := "noconnection"
	if why == "shutdown" {
		reason = "shutdown"
	}
	t.callsNodeDown(node)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.procs {
		if p.isDead() {
			continue
		}
		for ref, w := range p.watchers {
			if w.Node == node {
				delete(p.watchers, ref)
			}
		}
		for ref, target := range p.watching {
			if target.Node == node {
				t.deliverDown(t.pid(p), ref, target, reason, false)
			}
		}
		for l := range p.links {
			if l.Node == node {
				t.exitSignalLocked(p, l, reason, true)
			}
		}
	}
	t.dropMembersLocked(node)
}
