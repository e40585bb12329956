package web

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The connections net/http serves (TLS: HTTP/1.1 over a connection our
// listener decrypted, and HTTP/2) are wrapped and tracked here for two
// reasons; plain HTTP/1.1 has its own server (h1conn.go), which keeps its
// own clocks and states.
//
// Slow headers: net/http closes a connection whose headers are late without a
// word; a client (or a proxy in front of us) is better told 408, as gunicorn
// and nginx do. A clock per connection runs from accept, and from the first
// byte of each further request, until the handler starts.
//
// Draining: http.Server.Shutdown drops, unanswered, any request it reads after
// it began, including the first request of a connection accepted a moment
// before. When worker processes share a listening socket, a retiring worker
// has such connections at every reload, so Close drains instead (see
// Server.Close), which needs each connection's state.

// clockedConn is a connection with a header clock.
type clockedConn struct {
	net.Conn
	mu    sync.Mutex
	timer *time.Timer
	// plain: HTTP/1 whose bytes net/http reads through this connection (a
	// TCP one, or TLS that the listener terminated): a 408 can be written
	// as is, its framing followed, and it can be drained.
	plain   bool
	expired bool
	framer  atomic.Pointer[framer] // plain HTTP/1 only: see framing.go
}

func (c *clockedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if fr := c.framer.Load(); fr != nil && n > 0 {
		fr.feed(b[:n])
	}
	return n, err
}

const response408 = "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\nContent-Length: 25\r\n\r\nrequest headers too slow\n"

func (c *clockedConn) start(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired || c.timer != nil {
		return
	}
	c.timer = time.AfterFunc(d, c.expire)
}

func (c *clockedConn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

func (c *clockedConn) expire() {
	c.mu.Lock()
	if c.timer == nil { // stopped as it fired
		c.mu.Unlock()
		return
	}
	c.timer, c.expired = nil, true
	plain := c.plain
	c.mu.Unlock()
	if plain {
		c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.Conn.Write([]byte(response408))
	}
	c.Conn.Close()
}

// clockOf finds the clockedConn under c (which may be a *tls.Conn, or an
// HTTP/1 connection over TLS).
func clockOf(c net.Conn) (*clockedConn, bool) {
	plain := true
	switch tc := c.(type) {
	case *tls.Conn:
		c, plain = tc.NetConn(), false
	case *tlsClockedConn:
		return tc.clockedConn, true
	}
	cc, _ := c.(*clockedConn)
	return cc, plain
}

// connTracker drives the clocks from net/http's connection states and keeps
// the state of every open connection.
type connTracker struct {
	headerTimeout time.Duration
	maxHeader     int
	mu            sync.Mutex
	conns         map[*clockedConn]connEntry
}

type connEntry struct {
	st    http.ConnState
	since time.Time
}

func newConnTracker(headerTimeout time.Duration, maxHeader int) *connTracker {
	return &connTracker{headerTimeout: headerTimeout, maxHeader: maxHeader, conns: map[*clockedConn]connEntry{}}
}

func (t *connTracker) connState(c net.Conn, st http.ConnState) {
	cc, plain := clockOf(c)
	if cc == nil {
		return
	}
	t.mu.Lock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(t.conns, cc)
	default:
		t.conns[cc] = connEntry{st, time.Now()}
	}
	t.mu.Unlock()
	switch st {
	case http.StateNew:
		cc.mu.Lock()
		cc.plain = plain
		cc.mu.Unlock()
		if plain {
			cc.framer.Store(newFramer(t.maxHeader))
		}
		cc.start(t.headerTimeout)
	case http.StateActive:
		// Active comes with the first byte of a request on a kept-alive
		// connection (idle time is --keep-alive's business) and stays so
		// while the handler runs, which stops the clock.
		cc.start(t.headerTimeout)
	case http.StateHijacked:
		cc.framer.Store(nil) // a websocket now: no more requests
		cc.stop()
	default:
		cc.stop()
	}
}

// drainStep closes the idle plain connections, and those that connected more
// than a second ago without sending a byte (pre-connects), and reports how
// many plain connections still have a request to read or answer.
func (t *connTracker) drainStep() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	busy := 0
	for cc, e := range t.conns {
		cc.mu.Lock()
		plain := cc.plain
		cc.mu.Unlock()
		switch {
		case !plain: // HTTP/2 (and TLS served by net/http): Shutdown's business
		case e.st == http.StateIdle, e.st == http.StateNew && time.Since(e.since) > time.Second:
			if _, ok := cc.Conn.(*tls.Conn); ok {
				// Its close_notify may wait on a client that reads nothing.
				go cc.Conn.Close()
			} else {
				cc.Conn.Close()
			}
		default:
			busy++
		}
	}
	return busy
}

type clockKey struct{}

func withClock(ctx context.Context, c net.Conn) context.Context {
	if cc, _ := clockOf(c); cc != nil {
		return context.WithValue(ctx, clockKey{}, cc)
	}
	return ctx
}

// headersRead stops r's connection clock: the handler has its headers. It
// returns what the connection's framer found wrong with the request's
// framing ("" when nothing, or when the request is not followed).
func headersRead(r *http.Request) string {
	cc, ok := r.Context().Value(clockKey{}).(*clockedConn)
	if !ok {
		return ""
	}
	cc.stop()
	if fr := cc.framer.Load(); fr != nil && r.ProtoMajor == 1 {
		note, _ := fr.next()
		return note
	}
	return ""
}
