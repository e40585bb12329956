package bus

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// reachByName adds a route to node when it is not up here and the port
// mapper (Config.Resolve) knows where it listens, then waits (within ctx)
// for its first heartbeat, so that Connect('NAME@HOST') and Ping reach a
// node of another cluster, or one not yet met, as Erlang's do through EPMD.
func (b *Bus) reachByName(ctx context.Context, node string) {
	if b.cfg.Resolve == nil || b.srv == nil || b.cfg.Mode == Worker {
		return
	}
	if _, up := b.Roles(node); up {
		return
	}
	addr, err := b.cfg.Resolve(ctx, node)
	if err != nil {
		b.log.Debug("no route to the node by name", "peer", node, "err", err)
		return
	}
	if b.members.addrUp(addr) {
		return
	}
	if err := b.addRoute(addr); err != nil {
		b.log.Debug("no route to the node by name", "peer", node, "err", err)
		return
	}
	for ctx.Err() == nil {
		if _, up := b.Roles(node); up {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// resolveJoins turns the NAME@HOST entries of Join into HOST:PORT through
// Config.Resolve, retrying for JoinTimeout: a node may be started before the
// node it joins.
func (b *Bus) resolveJoins() error {
	if b.cfg.Mode == Worker || b.cfg.NATSURL != "" {
		return nil
	}
	deadline := time.Now().Add(b.cfg.JoinTimeout)
	out := make([]string, 0, len(b.cfg.Join))
	for _, j := range b.cfg.Join {
		if !strings.Contains(j, "@") {
			out = append(out, j)
			continue
		}
		if b.cfg.Resolve == nil {
			return fmt.Errorf("bus: --join %s: joining by name needs the port mapper (--mapper-port is 0)", j)
		}
		wait := 50 * time.Millisecond
		for {
			ctx, cancel := context.WithDeadline(b.ctx, deadline)
			addr, err := b.cfg.Resolve(ctx, j)
			cancel()
			if err == nil {
				b.log.Debug("resolved by the port mapper", "join", j, "addr", addr)
				out = append(out, addr)
				break
			}
			if time.Now().Add(wait).After(deadline) {
				return fmt.Errorf("bus: --join %s: %w", j, err)
			}
			time.Sleep(wait)
			wait = min(2*wait, time.Second)
		}
	}
	b.cfg.Join = out
	return nil
}
