package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Plain HTTP/1.1 (TCP and unix sockets) is served here rather than by
// net/http, which stays for TLS and HTTP/2. Per request net/http reads
// ahead in a second goroutine (to see the client leave), passes every read
// and write through the scheduler's system-call path (which, on a node
// whose CPU is otherwise idle, wakes the runtime's monitor thread each
// time), and builds the response through two layers of buffers; on a hello
// app that was most of a node's CPU per request. Here a connection is one
// goroutine that reads and writes its socket with non-blocking system calls
// made directly (the netpoller waits when the socket is not ready), frames
// requests itself (h1parse.go), and writes each response with one call.
// Whether the client has left is watched only while an ASGI app waits for
// it (receive() after the body).

// h1 connection states, for draining (Server.Close).
const (
	h1New    int32 = iota // accepted, no byte of a request yet
	h1Active              // a request is being read or answered
	h1Idle                // kept alive between requests, nothing buffered
)

// maxUnreadBody is how much of a body the app left unread is read and
// dropped to keep the connection; past it the connection closes (as
// net/http).
const maxUnreadBody = 256 << 10

// h1conn is one plain HTTP/1.1 connection.
type h1conn struct {
	s      *h1Server
	c      net.Conn
	raw    syscall.RawConn // nil: the connection's own Read and Write
	fd     int             // the socket, lent to the loop's thread for a streamed body; -1: none
	remote string
	local  net.Addr
	addrs  *connAddrs // split once, when a request first needs them

	buf    []byte // read buffer: buf[rd:wr] is read and not yet used
	rd, wr int
	wbuf   []byte // response bytes not yet written

	state atomic.Int32
	since atomic.Int64 // when accepted (unix ns)

	// The arguments and results of one system call, and the calls, made
	// once per connection so that a read or write allocates nothing. A
	// read (the app's goroutine reading the body) and a write (another
	// streaming the response) may run at once: each has its own.
	ioR      []byte
	ioRN     int
	ioRErr   syscall.Errno
	ioA, ioB []byte
	ioWN     int
	ioWErr   syscall.Errno
	readFn   func(uintptr) bool
	writeFn  func(uintptr) bool
	iov      [2]syscall.Iovec

	// wmu serialises writes: the response, and 100 Continue from the
	// goroutine reading the body. wroteFinal: bytes of this request's
	// response are on the wire, after which 100 Continue may not be sent.
	wmu        sync.Mutex
	wroteFinal bool

	head parsedHead
	body h1body
	resp h1response
	ctx  *reqCtx

	// A disconnect watch: a read in a second goroutine while the app waits
	// for the client to leave.
	linger bool // the client may still be sending: close gently

	watchDone chan struct{}
	watchData []byte
	watchErr  error

	// The read deadline readHead last set, while no one else has set one
	// since (rdlKnown): an idle connection's deadline is kept, not set
	// again, when it falls a little before the one wanted (see armIdle).
	rdl      time.Time
	rdlKnown atomic.Bool
}

// setReadDeadline sets the socket's read deadline for anyone but readHead.
func (c *h1conn) setReadDeadline(t time.Time) error {
	c.rdlKnown.Store(false)
	return c.c.SetReadDeadline(t)
}

// setHeadDeadline is readHead's: the deadline is remembered.
func (c *h1conn) setHeadDeadline(t time.Time) {
	c.rdlKnown.Store(false)
	c.c.SetReadDeadline(t)
	c.rdl = t
	c.rdlKnown.Store(true)
}

// armIdle sets an idle connection's deadline to until, or keeps the one set
// if it falls at most a 64th of --keep-alive before: setting a deadline takes
// the runtime's timer lock, and a busy connection would otherwise do it for
// every request. A kept deadline that fires early is set again, exactly
// (readHead).
func (c *h1conn) armIdle(until time.Time) {
	if c.rdlKnown.Load() && !c.rdl.After(until) && until.Sub(c.rdl) <= c.s.keepAlive/64 {
		return
	}
	c.setHeadDeadline(until)
}

func newH1Conn(s *h1Server, nc net.Conn) *h1conn {
	c := &h1conn{s: s, c: nc, local: nc.LocalAddr(), buf: make([]byte, 4096), fd: -1}
	if ra := nc.RemoteAddr(); ra != nil {
		c.remote = ra.String()
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.readFn, c.writeFn = c.rawRead, c.rawWrite
			raw.Control(func(fd uintptr) { c.fd = int(fd) })
		}
	}
	c.body.c = c
	c.resp.c = c
	c.setState(h1New)
	return c
}

func (c *h1conn) setState(st int32) {
	if st == h1New {
		c.since.Store(time.Now().UnixNano())
	}
	c.state.Store(st)
}

// rawRead reads into ioR; false asks the netpoller to wait for data. The
// read is tried even when the socket is likely empty (a kept-alive client
// that has not sent its next request): Go's poller forgets readiness at the
// start of each Read, so waiting first could miss data that came before.
func (c *h1conn) rawRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.ioR[0])), uintptr(len(c.ioR)))
		if e != syscall.EINTR {
			return syscallDone(n, e, &c.ioRN, &c.ioRErr)
		}
	}
}

// syscallDone keeps a non-blocking call's outcome in *nOut and *errOut; false
// when the socket was not ready (the netpoller then waits).
func syscallDone(n uintptr, e syscall.Errno, nOut *int, errOut *syscall.Errno) bool {
	switch e {
	case syscall.EAGAIN:
		return false
	case 0:
		*nOut, *errOut = int(n), 0
	default:
		*nOut, *errOut = 0, e
	}
	return true
}

// rawWrite writes ioA then ioB with one call; false waits for room.
func (c *h1conn) rawWrite(fd uintptr) bool {
	for {
		var n uintptr
		var e syscall.Errno
		if len(c.ioB) == 0 {
			n, _, e = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&c.ioA[0])), uintptr(len(c.ioA)))
		} else {
			c.iov[0].Base, c.iov[0].Len = &c.ioA[0], uint64(len(c.ioA))
			c.iov[1].Base, c.iov[1].Len = &c.ioB[0], uint64(len(c.ioB))
			n, _, e = syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&c.iov[0])), 2)
			c.iov[0].Base, c.iov[1].Base = nil, nil
		}
		if e != syscall.EINTR {
			return syscallDone(n, e, &c.ioWN, &c.ioWErr)
		}
	}
}

// read reads into p: at least one byte, or an error (io.EOF when the
// client closed; a net.Error for a deadline or a failed connection).
func (c *h1conn) read(p []byte) (int, error) {
	if c.raw == nil {
		return c.c.Read(p)
	}
	c.ioR = p
	err := c.raw.Read(c.readFn)
	c.ioR = nil
	switch {
	case err != nil:
		return 0, err
	case c.ioRErr != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Addr: c.local, Err: os.NewSyscallError("read", c.ioRErr)}
	case c.ioRN == 0:
		return 0, io.EOF
	}
	return c.ioRN, nil
}

// write writes a then b; c.wmu is held.
func (c *h1conn) write(a, b []byte) error {
	if len(a) == 0 {
		a, b = b, nil
	}
	if c.raw == nil {
		for _, p := range [][]byte{a, b} {
			if len(p) > 0 {
				if _, err := c.c.Write(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for len(a) > 0 {
		c.ioA, c.ioB = a, b
		err := c.raw.Write(c.writeFn)
		c.ioA, c.ioB = nil, nil
		if err != nil {
			return err
		}
		if c.ioWErr != 0 {
			return &net.OpError{Op: "write", Net: "tcp", Addr: c.local, Err: os.NewSyscallError("write", c.ioWErr)}
		}
		n := c.ioWN
		if n >= len(a) {
			a, b = b[n-len(a):], nil
		} else {
			a = a[n:]
		}
	}
	return nil
}

// flush writes wbuf, then extra: bytes of the response.
func (c *h1conn) flush(extra []byte) error {
	if len(c.wbuf)+len(extra) == 0 {
		return nil
	}
	c.wmu.Lock()
	c.wroteFinal = true
	err := c.write(c.wbuf, extra)
	c.wmu.Unlock()
	c.wbuf = c.wbuf[:0]
	if cap(c.wbuf) > 256<<10 {
		c.wbuf = nil // a large response's buffer is not kept
	}
	return err
}

// writeContinue sends 100 Continue unless the response has begun.
func (c *h1conn) writeContinue() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wroteFinal {
		return nil
	}
	return c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n"), nil)
}

// fill reads more into the read buffer, making room first; it grows the
// buffer up to limit bytes unused.
func (c *h1conn) fill(limit int) error {
	if c.rd == c.wr {
		c.rd, c.wr = 0, 0
	}
	if c.wr == len(c.buf) {
		if c.rd > 0 {
			c.wr = copy(c.buf, c.buf[c.rd:c.wr])
			c.rd = 0
		} else if len(c.buf) < limit {
			nb := make([]byte, min(2*len(c.buf), limit))
			c.wr = copy(nb, c.buf[c.rd:c.wr])
			c.rd, c.buf = 0, nb
		} else {
			return errHeadTooLarge
		}
	}
	n, err := c.read(c.buf[c.wr:])
	c.wr += n
	return err
}

var errHeadTooLarge = errors.New("request head too large")

// serve serves the connection's requests until it closes.
func (c *h1conn) serve() {
	defer c.close()
	defer func() {
		if v := recover(); v != nil {
			c.s.log.Error("panic serving a connection", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	for first := true; ; first = false {
		head, ok := c.readHead(first)
		if !ok {
			return
		}
		if herr := parseHead(head, &c.head); herr != nil {
			c.refuse(herr)
			return
		}
		if !c.serveRequest() {
			return
		}
	}
}

func (c *h1conn) close() {
	c.stopWatch()
	if !c.resp.hijacked { // else the handler's, as with net/http
		if c.linger {
			c.lingeringClose()
		}
		c.c.Close()
	}
	c.s.conns.remove(c)
}

// lingeringClose ends the connection's sending side and reads what the
// client still sends, for up to half a second: closing a socket that holds
// unread bytes sends a reset, and a client still sending a body (an app that
// answered 413 without reading it) would then lose the answer before
// reading it.
func (c *h1conn) lingeringClose() {
	cw, ok := c.c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.setReadDeadline(time.Now().Add(500 * time.Millisecond))
	var scratch [16 << 10]byte
	for total := 0; total < 16<<20; {
		n, err := c.c.Read(scratch[:])
		total += n
		if err != nil {
			return
		}
	}
}

// readHead reads the next request's head. The header clock (--header-timeout)
// runs from accept, and on a kept-alive connection from the first byte of a
// request; an idle kept-alive connection is closed after --keep-alive.
func (c *h1conn) readHead(first bool) (string, bool) {
	s := c.s
	limit := s.maxHeader + 4096
	if c.rd == c.wr && len(c.buf) > 16<<10 {
		c.buf, c.rd, c.wr = make([]byte, 4096), 0, 0 // a large head's buffer is not kept
	}
	c.skipEmptyLines()
	clock := first || c.rd < c.wr
	var idleUntil time.Time
	if clock {
		c.setHeadDeadline(time.Now().Add(s.headerTimeout))
	} else {
		c.setState(h1Idle)
		idleUntil = time.Now().Add(s.keepAlive)
		c.armIdle(idleUntil)
		// The connections with work go first. A client that waits for the
		// response before it sends its next request (most do) has had no
		// time to send it yet: a read now would find the socket empty and
		// cost a system call and a trip through the poller before the wait.
		// Once the others have run, the request has often arrived.
		runtime.Gosched()
	}
	startClock := false // the header clock starts: set before waiting for more
	for {
		c.skipEmptyLines()
		if c.rd < c.wr {
			if !clock { // the first byte on a kept-alive connection
				clock, startClock = true, true
			}
			if c.state.Load() != h1Active {
				c.setState(h1Active)
			}
			if e := headEnd(c.buf[c.rd:c.wr]); e >= 0 {
				head := string(c.buf[c.rd : c.rd+e])
				c.rd += e
				return head, true
			}
			if startClock { // not needed when the whole head came at once
				startClock = false
				c.setHeadDeadline(time.Now().Add(s.headerTimeout))
			}
		}
		err := c.fill(limit)
		switch {
		case err == nil:
		case errors.Is(err, errHeadTooLarge):
			c.refuse(&headError{code: http.StatusRequestHeaderFieldsTooLarge, why: "request header fields too large"})
			return "", false
		case isTimeout(err) && (first || c.rd < c.wr):
			c.writeRaw(response408)
			return "", false
		case isTimeout(err) && !clock && time.Now().Before(idleUntil):
			c.setHeadDeadline(idleUntil) // a kept deadline, earlier than this one
		default: // the client left, or an idle connection timed out or was drained
			return "", false
		}
	}
}

// isTimeout reports whether err is a net.Error's timeout. The error's
// variable lives here: declared in readHead's loop, it went to the heap on
// every request.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// skipEmptyLines drops empty lines before a request (RFC 9112 2.2).
func (c *h1conn) skipEmptyLines() {
	for c.rd < c.wr && (c.buf[c.rd] == '\n' || c.buf[c.rd] == '\r' && c.rd+1 < c.wr && c.buf[c.rd+1] == '\n') {
		c.rd++
	}
}

// refuse answers a request the server will not serve, and the connection ends.
func (c *h1conn) refuse(e *headError) {
	if e.framing {
		c.s.log.Warn("request refused: ambiguous framing", "remote", c.remote, "why", e.why)
	} else {
		c.s.log.Debug("request refused", "remote", c.remote, "code", e.code, "why", e.why)
	}
	why := e.why
	if e.framing {
		why = "ambiguous framing: " + why
	}
	text := statusText(e.code)
	msg := strconv.Itoa(e.code) + " " + text + ": " + why + "\n"
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(e.code), 10)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, msg...)
	c.writeRaw(string(b))
	c.linger = true
}

// writeRaw writes a whole response the server makes itself, bounded by a second.
func (c *h1conn) writeRaw(s string) {
	c.c.SetWriteDeadline(time.Now().Add(time.Second))
	c.wmu.Lock()
	c.write([]byte(s), nil)
	c.wmu.Unlock()
}

// serveRequest runs the handler on the request parsed into c.head and
// answers it; false when the connection must close.
func (c *h1conn) serveRequest() bool {
	s := c.s
	c.head.req.RemoteAddr = c.remote
	c.body.reset(c.head.chunked, c.head.length, c.head.expect)
	c.wroteFinal = false // no other goroutine has the request yet
	if c.head.length != 0 {
		c.head.req.Body = &c.body
	} else {
		c.head.req.Body = http.NoBody
	}
	// An upgrade (a websocket) is never watched: the connection becomes the app's.
	ctx := &reqCtx{c: c, noWatch: c.head.req.Header["Upgrade"] != nil}
	c.ctx = ctx
	r := c.head.req.WithContext(ctx)
	c.resp.reset(r)
	// The head's read deadline is left: each read of the body sets its
	// own, and a disconnect watch clears it.
	if r.Method == http.MethodOptions && r.RequestURI == "*" {
		// About the server, not a resource (RFC 9110 9.3.7): answered
		// here, as net/http does.
		c.resp.header["Content-Length"] = []string{"0"}
		c.resp.WriteHeader(http.StatusOK)
	} else {
		s.handler.ServeHTTP(&c.resp, r)
	}
	ctx.cancel() // as net/http: the handler has returned
	c.stopWatch()
	if c.resp.hijacked {
		return false
	}
	keep := c.resp.finish()
	c.ctx = nil
	if keep && c.dropUnreadBody() {
		return true
	}
	c.linger = !c.body.eof.Load() || c.rd < c.wr
	return false
}

// dropUnreadBody reads and drops what the app left of the body, keeping the
// connection; false when too much is left, or the client was never told to
// send it (Expect: 100-continue).
func (c *h1conn) dropUnreadBody() bool {
	b := &c.body
	if b.eof.Load() {
		return true
	}
	if b.wouldClose.Load() {
		return false
	}
	c.setReadDeadline(time.Now().Add(c.s.headerTimeout))
	var scratch [4096]byte
	for total := 0; !b.eof.Load(); {
		n, err := b.Read(scratch[:])
		total += n
		if err == io.EOF {
			break
		}
		if err != nil || total > maxUnreadBody {
			return false
		}
	}
	return true
}

// watch starts reading in a second goroutine to see the client leave; ctx
// is then cancelled. Called with ctx.mu held.
func (c *h1conn) watch(ctx *reqCtx) {
	if c.watchDone != nil {
		return
	}
	done := make(chan struct{})
	c.watchDone = done
	c.setReadDeadline(time.Time{}) // before stopWatch can set one
	go func() {
		defer close(done)
		var b [512]byte
		n, err := c.c.Read(b[:])
		if n > 0 {
			c.watchData = append(c.watchData[:0], b[:n]...) // the client sent more: a pipelined request
			return
		}
		if isTimeout(err) {
			return // stopped
		}
		c.watchErr = err
		ctx.cancel()
	}()
}

// stopWatch ends a disconnect watch; what it read is kept for the next request.
func (c *h1conn) stopWatch() {
	ctx := c.ctx
	if ctx == nil {
		return
	}
	ctx.mu.Lock()
	ctx.noWatch = true
	done := c.watchDone
	ctx.mu.Unlock()
	if done == nil {
		return
	}
	c.setReadDeadline(time.Unix(1, 0))
	<-done
	c.setReadDeadline(time.Time{})
	ctx.mu.Lock()
	c.watchDone = nil
	ctx.mu.Unlock()
	if len(c.watchData) > 0 {
		if c.rd == c.wr {
			c.rd, c.wr = 0, 0
		}
		if len(c.buf)-c.wr < len(c.watchData) {
			nb := make([]byte, c.wr-c.rd+len(c.watchData)+4096)
			c.wr = copy(nb, c.buf[c.rd:c.wr])
			c.rd, c.buf = 0, nb
		}
		c.wr += copy(c.buf[c.wr:], c.watchData)
		c.watchData = c.watchData[:0]
	}
	if c.watchErr != nil {
		c.resp.closeAfter = true
	}
}

// reqCtx is a request's context: cancelled when the handler returns, or
// when the client leaves while the app waits for that (Done starts the
// watch). Values: the local address (as net/http's LocalAddrContextKey).
type reqCtx struct {
	c       *h1conn
	mu      sync.Mutex
	end     ending
	noWatch bool // ended, or the connection is hijacked or being read
}

func (x *reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (x *reqCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	done := x.end.doneLocked()
	// The client can only be seen to leave once the body is read: before,
	// a read would take the body's bytes.
	if !x.noWatch && x.c.body.eof.Load() {
		x.c.watch(x)
	}
	return done
}

func (x *reqCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.end.err
}

func (x *reqCtx) Value(key any) any {
	switch key {
	case http.LocalAddrContextKey:
		return x.c.local
	case connAddrsKey{}:
		if x.c.addrs == nil {
			x.c.addrs = splitAddrs(x.c.remote, x.c.local)
		}
		return x.c.addrs
	}
	return nil
}

func (x *reqCtx) cancel() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.end.endLocked(context.Canceled)
}

// h1Conns are a server's plain HTTP/1.1 connections, for draining.
type h1Conns struct {
	mu       sync.Mutex
	m        map[*h1conn]struct{}
	draining atomic.Bool // no more keep-alive: each connection closes after its response
}

func (t *h1Conns) add(c *h1conn) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[*h1conn]struct{}{}
	}
	t.m[c] = struct{}{}
	t.mu.Unlock()
}

func (t *h1Conns) remove(c *h1conn) {
	t.mu.Lock()
	delete(t.m, c)
	t.mu.Unlock()
}

// drainStep closes the idle connections, and those that connected more than
// a second ago without sending a byte, and reports how many are answering.
func (t *h1Conns) drainStep() int {
	t.draining.Store(true)
	t.mu.Lock()
	defer t.mu.Unlock()
	busy := 0
	for c := range t.m {
		switch st := c.state.Load(); {
		case st == h1Idle, st == h1New && time.Since(time.Unix(0, c.since.Load())) > time.Second:
			c.c.Close()
		default:
			busy++
		}
	}
	return busy
}

// h1Server serves plain HTTP/1.1 with a handler.
type h1Server struct {
	handler       http.Handler
	maxHeader     int           // bytes of a request head; past it, 431
	headerTimeout time.Duration // the header clock; past it, 408
	keepAlive     time.Duration // idle time of a kept-alive connection
	log           *slog.Logger
	conns         h1Conns
	date          dateCache
}

// ServeHTTP1 serves plain HTTP/1.1 on ln with hornbeam's server until ln
// closes, with the default bounds (64 KiB heads, 10 s header timeout, 5 s
// keep-alive): the server of a node's plain binds, with a Go handler (the
// benchmarks measure it so).
func ServeHTTP1(ln net.Listener, h http.Handler) {
	s := &h1Server{handler: h, maxHeader: 64 << 10, headerTimeout: 10 * time.Second,
		keepAlive: 5 * time.Second, log: slog.Default()}
	s.serve(ln)
}

// serve accepts connections on ln until it closes.
func (s *h1Server) serve(ln net.Listener) {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := newH1Conn(s, nc)
		s.conns.add(c)
		go c.serve()
	}
}
