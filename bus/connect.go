package bus

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Connect reaches a node by name (pinging it, and undoing a Disconnect), or a
// cluster by HOST:PORT of one of its route listeners (adding a route; the mesh
// then completes by gossip). It reports whether the target answered before ctx ended.
func (b *Bus) Connect(ctx context.Context, target string) (bool, error) {
	if strings.Contains(target, "@") {
		b.members.connected(target)
		b.reachByName(ctx, target)
		if !b.Ping(ctx, target) {
			return false, nil
		}
		for !slicesContains(b.Nodes(Connected), target) && ctx.Err() == nil {
			time.Sleep(b.cfg.Heartbeat / 4)
		}
		return true, nil
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return false, fmt.Errorf("bus: connect %q: want NAME@HOST or HOST:PORT", target)
	}
	if err := b.addRoute(target); err != nil {
		return false, err
	}
	for ctx.Err() == nil {
		if b.members.addrUp(target) {
			return true, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false, nil
}

// addRoute adds a route to target (HOST:PORT of a route listener).
func (b *Bus) addRoute(target string) error {
	if b.cfg.Mode == Worker {
		return fmt.Errorf("bus: connect %q: a worker process cannot add routes; its node (the supervising process) manages them: use --join", target)
	}
	if b.srv == nil {
		return fmt.Errorf("bus: connect %q: this node uses an external NATS (--nats), whose routes it does not manage", target)
	}
	if b.cfg.InsecureRoutes {
		if err := insecureAllowed("127.0.0.1", []string{target}); err != nil {
			return err
		}
	}
	b.optsMu.Lock()
	for _, r := range b.sopts.Routes {
		if r.Host == target {
			b.optsMu.Unlock()
			return nil // NATS keeps trying a route it has
		}
	}
	newOpts := b.sopts.Clone()
	newOpts.Routes = append(newOpts.Routes, &url.URL{Scheme: "nats-route", Host: target})
	err := b.srv.ReloadOptions(newOpts)
	if err == nil {
		b.sopts = newOpts
	}
	b.optsMu.Unlock()
	if err != nil {
		return fmt.Errorf("bus: adding route to %s: %w", target, err)
	}
	return nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
