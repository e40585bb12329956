// Package dashboard serves a node's metrics bind: Prometheus's /metrics, a
// JSON view of the cluster (/api/cluster) and the web page at / that shows
// it. The cluster view is also what `hornbeam status` prints.
package dashboard

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/bus"
)

// Node is one node as the dashboard and `hornbeam status` show it.
type Node struct {
	Name          string             `json:"name"`
	Up            bool               `json:"up"`
	Roles         []string           `json:"roles"`
	Capabilities  map[string]float64 `json:"capabilities"`
	Addr          string             `json:"addr,omitempty"`
	LastHeartbeat *time.Time         `json:"last_heartbeat,omitempty"`
	// Info is the node's node_info (load, memory, uptime, GPUs, and its
	// request and call totals); absent when the node is down or did not
	// answer in time, with Error saying why.
	Info  map[string]any `json:"info,omitempty"`
	Error string         `json:"error,omitempty"`
}

// Cluster is the cluster as one node sees it.
type Cluster struct {
	Node  string    `json:"node"` // the node that answered
	Time  time.Time `json:"time"`
	Nodes []Node    `json:"nodes"`
}

// Bounds on what one view of the cluster costs.
const (
	// InfoTimeout bounds the wait for one node's figures.
	InfoTimeout = 1500 * time.Millisecond
	// MaxNodes bounds the nodes one view lists.
	MaxNodes = 1024
	// fetchers bounds the node_info requests in flight at once.
	fetchers = 16
)

// infoDec decodes node_info answers: maps with string keys (JSON's), and
// the limits of any input from another node.
var infoDec, _ = cbor.DecOptions{
	DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
	MaxNestedLevels:  16,
	MaxArrayElements: 4096,
	MaxMapPairs:      4096,
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
}.DecMode()

// Collect builds the view of the cluster from b's membership (and from
// via's, when via names another node: a tool that just joined learns of
// nodes that went down before it came), with every up node's node_info
// fetched over the bus, each within InfoTimeout. Hidden nodes (tools) are
// left out.
func Collect(ctx context.Context, b *bus.Bus, via string) Cluster {
	seen := map[string]bus.Seen{}
	var order []string
	add := func(list []bus.Seen, trust bool) {
		for _, s := range list {
			if s.Hidden || len(order) >= MaxNodes && seen[s.Name].Name == "" {
				continue
			}
			old, ok := seen[s.Name]
			if !ok {
				order = append(order, s.Name)
			}
			if !ok || trust || (!old.Up && s.Up) {
				seen[s.Name] = s
			}
		}
	}
	if via != "" && via != b.Name() {
		vctx, cancel := context.WithTimeout(ctx, InfoTimeout)
		if list, err := b.SeenBy(vctx, via); err == nil {
			add(list, false)
		}
		cancel()
	}
	add(b.AllSeen(), true)
	self := bus.Seen{Member: bus.Member{Name: b.Name()}, Up: true, LastSeen: time.Now()}
	if _, ok := seen[self.Name]; !ok {
		order = append([]string{self.Name}, order...)
	}
	seen[self.Name] = self

	out := Cluster{Node: b.Name(), Time: time.Now().UTC(), Nodes: make([]Node, len(order))}
	sem := make(chan struct{}, fetchers)
	var wg sync.WaitGroup
	for i, name := range order {
		s := seen[name]
		n := Node{Name: s.Name, Up: s.Up, Roles: s.Roles, Capabilities: s.Caps, Addr: s.Addr}
		if n.Roles == nil {
			n.Roles = []string{}
		}
		if !s.LastSeen.IsZero() {
			t := s.LastSeen.UTC()
			n.LastHeartbeat = &t
		}
		out.Nodes[i] = n
		if !s.Up {
			n.Error = "down"
			out.Nodes[i] = n
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ictx, cancel := context.WithTimeout(ctx, InfoTimeout)
			defer cancel()
			data, err := b.Info(ictx, name)
			if err != nil {
				out.Nodes[i].Error = err.Error()
				return
			}
			var info map[string]any
			if err := infoDec.Unmarshal(data, &info); err != nil {
				out.Nodes[i].Error = "malformed node_info: " + err.Error()
				return
			}
			out.Nodes[i].Info = info
			if r, ok := info["roles"].([]any); ok && name == b.Name() {
				out.Nodes[i].Roles = toStrings(r)
			}
		}()
	}
	wg.Wait()
	return out
}

func toStrings(v []any) []string {
	out := make([]string, 0, len(v))
	for _, x := range v {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
