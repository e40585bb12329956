package process

import (
	"fmt"
	"sort"
)

// Process groups are cluster-wide, as Erlang's pg: each node owns its own
// processes' memberships and tells every other node of each join and leave;
// a node that comes up is sent the whole of each node's local memberships;
// a node that goes down takes its members with it.

// Join adds the local process pid to group (once; joining again is a no-op).
func (t *Table) Join(group string, pid Pid) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procs[pid.ID]
	if pid.Node != t.cfg.Node || p == nil || p.isDead() {
		return fmt.Errorf("%w: %s", ErrNoProc, pid)
	}
	if _, ok := p.groups[group]; ok {
		return nil
	}
	if p.groups == nil {
		p.groups = map[string]struct{}{}
	}
	p.groups[group] = struct{}{}
	t.addMember(group, pid)
	t.broadcast(frame{Kind: fPgJoin, Name: group, ID: pid.ID})
	return nil
}

// Leave removes the local process pid from group; false if it was not a member.
func (t *Table) Leave(group string, pid Pid) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procs[pid.ID]
	if pid.Node != t.cfg.Node || p == nil {
		return false
	}
	if _, ok := p.groups[group]; !ok {
		return false
	}
	delete(p.groups, group)
	t.leaveLocked(group, pid, true)
	return true
}

func (t *Table) addMember(group string, pid Pid) {
	ms := t.groups[group]
	if ms == nil {
		ms = map[Pid]struct{}{}
		t.groups[group] = ms
	}
	ms[pid] = struct{}{}
}

func (t *Table) leaveLocked(group string, pid Pid, tell bool) {
	if ms := t.groups[group]; ms != nil {
		delete(ms, pid)
		if len(ms) == 0 {
			delete(t.groups, group)
		}
	}
	if tell && pid.Node == t.cfg.Node {
		t.broadcast(frame{Kind: fPgLeave, Name: group, ID: pid.ID})
	}
}

// Members lists group's members on every node, sorted by node and number.
func (t *Table) Members(group string) []Pid {
	t.mu.RLock()
	out := make([]Pid, 0, len(t.groups[group]))
	for m := range t.groups[group] {
		out = append(out, m)
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Publish sends msg to every member of group and returns to how many it was
// sent: local members with room in their mailbox, and every remote member
// (one frame per node).
func (t *Table) Publish(group string, msg []byte) int {
	t.mu.RLock()
	var local []*proc
	remote := map[string][]uint64{}
	for m := range t.groups[group] {
		if m.Node == t.cfg.Node {
			if p := t.procs[m.ID]; p != nil {
				local = append(local, p)
			}
		} else {
			remote[m.Node] = append(remote[m.Node], m.ID)
		}
	}
	t.mu.RUnlock()
	n := 0
	for _, p := range local {
		if t.push(p, msg) == nil {
			n++
		}
	}
	for node, ids := range remote {
		if t.sendRemote(node, frame{Kind: fSendMany, IDs: ids, Msg: msg}) == nil {
			n += len(ids)
		}
	}
	return n
}

// localGroups is this node's processes' memberships, group -> ids.
func (t *Table) localGroups() map[string][]uint64 {
	out := map[string][]uint64{}
	for g, ms := range t.groups {
		for m := range ms {
			if m.Node == t.cfg.Node {
				out[g] = append(out[g], m.ID)
			}
		}
	}
	return out
}

// NodeUp sends node this node's group memberships.
func (t *Table) NodeUp(node string) {
	t.mu.RLock()
	f := frame{Kind: fPgSync, Groups: t.localGroups()}
	t.mu.RUnlock()
	t.sendRemote(node, f)
}

// Hello asks every live peer for its group memberships; the host calls it
// once the table receives frames, since peers that saw this node come up
// before then may have sent theirs too early.
func (t *Table) Hello() {
	tr := t.transport()
	if tr == nil {
		return
	}
	for _, n := range tr.Peers() {
		t.sendRemote(n, frame{Kind: fPgHello})
		t.NodeUp(n)
	}
}

// dropMembersLocked removes node's processes from every group (and groups
// left empty). Caller holds t.mu.
func (t *Table) dropMembersLocked(node string) {
	for g, ms := range t.groups {
		for m := range ms {
			if m.Node == node {
				delete(ms, m)
			}
		}
		if len(ms) == 0 {
			delete(t.groups, g)
		}
	}
}

// syncFrom replaces node's members by groups. Caller holds t.mu.
func (t *Table) syncFrom(node string, groups map[string][]uint64) {
	t.dropMembersLocked(node)
	for g, ids := range groups {
		for _, id := range ids {
			t.addMember(g, Pid{Node: node, ID: id})
		}
	}
}

func (t *Table) broadcast(f frame) {
	tr := t.transport()
	if tr == nil {
		return
	}
	for _, n := range tr.Peers() {
		t.sendRemote(n, f)
	}
}
