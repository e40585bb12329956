package bus

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Seen is what this node knows of another, up or down: what it announced,
// its last heartbeat and whether it is up now.
type Seen struct {
	Member
	Up       bool
	Addr     string    // its cluster listener
	LastSeen time.Time // its last heartbeat
}

// AllSeen lists every node this one has heard from, up or down, by name.
// The list is bounded by the names that ever joined (a node that comes back
// under its name is one entry).
func (b *Bus) AllSeen() []Seen {
	ms := b.members
	ms.mu.Lock()
	out := make([]Seen, 0, len(ms.m))
	for _, m := range ms.m {
		out = append(out, Seen{Member: Member{Name: m.name, Hidden: m.hidden, Roles: slices.Clone(m.roles), Caps: maps.Clone(m.caps)},
			Up: m.up, Addr: m.addr, LastSeen: m.lastSeen})
	}
	ms.mu.Unlock()
	slices.SortFunc(out, func(a, b Seen) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// sysMembers asks a node for its view of the cluster (AllSeen).
const sysMembers = "members"

// seenWire is Seen as it crosses the wire.
type seenWire struct {
	Member
	Up       bool   `cbor:"up"`
	Addr     string `cbor:"addr"`
	LastSeen int64  `cbor:"last_seen_ms"`
}

// maxSeenReply bounds the members a node reports to SeenBy: beyond that
// many names a cluster is not one a table shows.
const maxSeenReply = 4096

func (b *Bus) onSysMembers(m *nats.Msg) {
	all := b.AllSeen()
	out := make([]seenWire, 0, min(len(all), maxSeenReply))
	for _, s := range all {
		if len(out) == maxSeenReply {
			break
		}
		if !s.Hidden {
			out = append(out, seenWire{Member: s.Member, Up: s.Up, Addr: s.Addr, LastSeen: s.LastSeen.UnixMilli()})
		}
	}
	data, err := encMode.Marshal(out)
	if err != nil {
		b.log.Error("encoding the member list", "err", err)
		return
	}
	m.Respond(data)
}

// SeenBy asks node for every (not hidden) node it has heard from, up or down:
// a tool node that just joined learns of nodes that left before it came.
func (b *Bus) SeenBy(ctx context.Context, node string) ([]Seen, error) {
	if node == b.name {
		return b.AllSeen(), nil
	}
	msg, err := b.nc.RequestWithContext(ctx, b.sysSubject(node), []byte(sysMembers))
	if err != nil {
		return nil, &CallError{Node: node, Module: "members", Err: fmt.Errorf("%w: %v", ErrNodeDown, err)}
	}
	var in []seenWire
	if err := decMode.Unmarshal(msg.Data, &in); err != nil {
		return nil, fmt.Errorf("bus: malformed member list from %s: %w", node, err)
	}
	out := make([]Seen, 0, len(in))
	for _, s := range in {
		out = append(out, Seen{Member: s.Member, Up: s.Up, Addr: s.Addr, LastSeen: time.UnixMilli(s.LastSeen)})
	}
	return out, nil
}

// peerLogLevel is the level of a peer's nodeup and nodedown: hidden nodes
// are mostly CLI tools (`hornbeam call`, `nodes`, `status`) that come and go
// with every command, so their comings and goings are DEBUG.
func logPeer(log *slog.Logger, hidden bool, msg string, args ...any) {
	level := slog.LevelInfo
	if hidden {
		level = slog.LevelDebug
	}
	log.Log(context.Background(), level, msg, args...)
}

// gossipedRouteError reports a failure to reach a route that gossip, not
// --join, gave this node: a peer that left (every CLI tool does, at the end
// of its command). NATS retries it once; it is news only at DEBUG. A seed
// that cannot be reached stays a warning.
func (b *Bus) gossipedRouteError(msg string) bool {
	if !strings.Contains(msg, "Error trying to connect to route") {
		return false
	}
	for _, j := range b.cfg.Join {
		if strings.Contains(msg, j) {
			return false
		}
	}
	return true
}
