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

// net/http closes a connection whose headers are late without a word; a client
// (or a proxy in front of us) is better told 408, as gunicorn and nginx do. A
// clock per connection runs from accept, and from the first byte of each
// further request, until the handler starts.

// slowClientListener wraps accepted connections in clockedConn, and counts
// them until they close.
type slowClientListener struct {
	net.Listener
	open *atomic.Int64
}

func (l slowClientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &clockedConn{Conn: c}, nil
}

// clockedConn is a connection with a header clock.
type clockedConn struct {
	net.Conn
	mu      sync.Mutex
	timer   *time.Timer
	plain   bool // not TLS: a 408 can be written as is
	expired bool
}

const response408 = "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\nContent-Length: 25\r\n\r\nrequest headers too slow\n"

func (c *clockedConn) start(d time.Duration, plain bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired || c.timer != nil {
		return
	}
	c.plain = plain
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

// clockOf finds the clockedConn under c (which may be a *tls.Conn).
func clockOf(c net.Conn) (*clockedConn, bool) {
	plain := true
	if tc, ok := c.(*tls.Conn); ok {
		c, plain = tc.NetConn(), false
	}
	cc, _ := c.(*clockedConn)
	return cc, plain
}

// headerTimer drives the clocks from net/http's connection states, and counts
// down open connections.
//
// The count is why: http.Server.Shutdown can return while a connection it
// accepted a moment before is not yet tracked (between Accept and its first
// state), and that connection is then served after Shutdown returned. With
// the listening socket shared by worker processes this happens under load at
// every reload, so Close also waits for this count to reach zero.
type headerTimer struct {
	d    time.Duration
	open *atomic.Int64
}

func (h headerTimer) connState(c net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		h.open.Add(-1)
	}
	cc, plain := clockOf(c)
	if cc == nil {
		return
	}
	switch st {
	case http.StateNew, http.StateActive:
		// Active comes with the first byte of a request on a kept-alive
		// connection (idle time is --keep-alive's business) and stays so
		// while the handler runs, which stops the clock.
		cc.start(h.d, plain)
	default:
		cc.stop()
	}
}

type clockKey struct{}

func withClock(ctx context.Context, c net.Conn) context.Context {
	if cc, _ := clockOf(c); cc != nil {
		return context.WithValue(ctx, clockKey{}, cc)
	}
	return ctx
}

// headersRead stops r's connection clock: the handler has its headers.
func headersRead(r *http.Request) {
	if cc, ok := r.Context().Value(clockKey{}).(*clockedConn); ok {
		cc.stop()
	}
}
