package web

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TLS is terminated here rather than by http.Server.ServeTLS so that HTTP/1.1
// over TLS gets what plain HTTP/1 gets: the framer that refuses ambiguous
// framing (framing.go), the header clock with its 408, and draining
// (slowclient.go). Those need the request's bytes as net/http reads them,
// which ServeTLS hides inside its *tls.Conn. So the listener runs each
// handshake itself and, by the protocol negotiated (ALPN), hands net/http
// either the *tls.Conn (HTTP/2: net/http's TLSNextProto serves it) or a
// clockedConn over it (HTTP/1.1), which net/http serves as a plain
// connection; that wrapper reports the TLS state, so Request.TLS is set as
// before.

// maxHandshakes bounds the TLS handshakes in flight on one listener. Past it
// the listener stops accepting until one ends: the connections wait in the
// kernel's backlog, and each handshake ends within the header timeout.
const maxHandshakes = 1024

// tlsListener accepts TCP connections and hands them on once their TLS
// handshake is done, each handshake in its own goroutine so that a slow one
// never holds up another client.
type tlsListener struct {
	net.Listener
	conf    *tls.Config
	timeout time.Duration // a handshake's time, and with the headers' after it
	log     *slog.Logger
	slots   chan struct{} // a slot per handshake in flight
	shaking atomic.Int32  // handshakes in flight
	ready   chan net.Conn
	ctx     context.Context // cancelled by abort: handshakes in flight end
	cancel  context.CancelFunc
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup // the accept loop and the handshakes
	done    chan struct{}  // closed once the accept loop and every handshake ended
	err     error          // why the accept loop ended; read after done
}

// newTLSListener serves ln with conf; at most inFlight handshakes run at once.
func newTLSListener(ln net.Listener, conf *tls.Config, timeout time.Duration, inFlight int, log *slog.Logger) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsListener{Listener: ln, conf: conf, timeout: timeout, log: log,
		slots: make(chan struct{}, inFlight), ready: make(chan net.Conn),
		ctx: ctx, cancel: cancel, closing: make(chan struct{}), done: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	go func() { l.wg.Wait(); close(l.done) }()
	return l
}

func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	backoff := time.Duration(0)
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.closing:
			l.err = net.ErrClosed
			return
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			select {
			case <-l.closing:
				l.err = net.ErrClosed
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				l.err = err
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-l.closing:
			}
			continue
		}
		backoff = 0
		l.wg.Add(1)
		l.shaking.Add(1)
		go l.handshake(c)
	}
}

// handshake runs c's TLS handshake, bounded by the header timeout, and hands
// the connection to Accept. An HTTP/1 connection's header clock starts with
// what is left of that time, so handshake and headers together get one
// header timeout, as a plain connection's headers do.
func (l *tlsListener) handshake(c net.Conn) {
	defer l.wg.Done()
	defer func() { l.shaking.Add(-1); <-l.slots }()
	t0 := time.Now()
	tc := tls.Server(c, l.conf)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			// Plain HTTP to the HTTPS port: say so, as net/http does.
			re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		l.log.Debug("TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	var out net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		cc := &clockedConn{Conn: tc, plain: true}
		cc.start(l.timeout - time.Since(t0)) // StateNew then finds it running
		out = &tlsClockedConn{cc}
	}
	select {
	case l.ready <- out:
	case <-l.ctx.Done():
		if cc, ok := out.(*tlsClockedConn); ok {
			cc.stop()
		}
		tc.NetConn().Close()
	}
}

// looksLikeHTTP reports whether the first bytes of a TLS record are those of
// an HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH":
		return true
	}
	return false
}

// Accept returns the next connection whose handshake is done. After Close it
// still returns those whose handshakes were in flight (each ends within the
// header timeout), then net.ErrClosed: a connection the server accepted is
// served, as a plain one is when it drains.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close stops accepting; handshakes in flight go on (see Accept).
func (l *tlsListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		close(l.closing)
		err = l.Listener.Close()
	})
	return err
}

// abort closes the listener and ends the handshakes in flight and the
// connections not yet accepted.
func (l *tlsListener) abort() {
	l.Close()
	l.cancel()
}

// tlsClockedConn is an HTTP/1 connection over TLS. net/http serves it as a
// plain connection (it is no *tls.Conn) and sets Request.TLS from its
// ConnectionState, so the app still sees https and wss.
type tlsClockedConn struct{ *clockedConn }

func (c *tlsClockedConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(*tls.Conn).ConnectionState()
}
