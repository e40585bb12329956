// Package web serves a node's Python app over HTTP: Go owns the sockets and
// the HTTP protocol, Python runs the app (WSGI, on the interpreter's pool).
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/internal/bytebudget"
	"github.com/hornbeam-go/hornbeam/internal/idmap"
	"github.com/hornbeam-go/hornbeam/metrics"
	"github.com/hornbeam-go/hornbeam/pybridge"
)

// Config configures a Server.
type Config struct {
	App  string // module:attribute of the app
	ASGI bool   // an ASGI 3 app (else WSGI)
	// Detect: the protocol (and a missing attribute) are found from the app
	// itself at Start, overriding ASGI.
	Detect   bool
	Lifespan string   // ASGI lifespan: "auto" (default), "on" or "off"
	Binds    []string // HOST:PORT or unix:PATH
	// Listeners, when set, are served instead of Binds: a worker process
	// serves the sockets its supervisor opened.
	Listeners []net.Listener
	// MaxRequests: after this many requests the server reports Exhausted (a
	// worker then retires); 0 = never.
	MaxRequests int64
	// HeaderTimeout bounds how long a client may take to send a request's
	// headers; past it the client gets 408 (slowloris). 0 = 10 s.
	HeaderTimeout    time.Duration
	Timeout          time.Duration // the app's time per request; past it the client gets 504
	LimitConcurrency int           // requests served at once; beyond, 503
	// WebSocketBuffer bounds the bytes of websocket messages read from all
	// clients and not yet handed to Python; a connection that finds it full
	// reads nothing (its client waits) for up to 10 s, then is closed with
	// 1013 (try again later). 0 = DefaultWebSocketBuffer.
	WebSocketBuffer int64
	RootPath        string // SCRIPT_NAME: the prefix the app is mounted under
	MaxHeaderBytes  int
	KeepAlive       time.Duration // idle time of a kept-alive connection
	CertFile        string        // with KeyFile: serve TLS, and HTTP/2 by ALPN
	KeyFile         string
	Factory         bool // App is a callable that returns the app
	// BodyTimeout bounds how long a client may stall while sending a
	// request body; past it the client gets 408 and the app's read fails.
	// 0 = 30 s.
	BodyTimeout time.Duration
	// NoServerHeader: send no Server header (else "Server: hornbeam" unless
	// the app sets one).
	NoServerHeader bool
	// Multiprocess: the app runs in several processes (wsgi.multiprocess).
	Multiprocess bool
	// WSMax bounds the websockets open at once (beyond, 503); 0 = 4096.
	WSMax int
	// WSPingInterval: a ping every this often on each websocket, and
	// WSPingTimeout for its pong, else the connection ends; 0 = 20 s each,
	// negative = no pings.
	WSPingInterval, WSPingTimeout time.Duration
	AccessLog                     io.Writer // common log format; nil = none
	// Tracebacks, when set (a terminal), gets the app's tracebacks as
	// Python prints them; else they are an attribute of the log line.
	Tracebacks io.Writer
	Logger     *slog.Logger
	Metrics    *metrics.Set // counts requests; nil counts nothing
	// ForwardedAllowIPs: peers whose X-Forwarded-For/-Proto set the client
	// address and scheme (--proxy-headers); nil believes no peer.
	ForwardedAllowIPs *Trusted
	// AccessFormat writes the access log in gunicorn's format; nil keeps
	// the default line.
	AccessFormat *AccessFormat
}

// Server serves one app.
type Server struct {
	cfg       Config
	log       *slog.Logger
	py        atomic.Value                // caller
	reqs      idmap.Map[uint64, *request] // while Python holds the request
	nextID    atomic.Uint64
	active    atomic.Int64 // requests in the app, at most cfg.LimitConcurrency
	https     []*http.Server
	lns       []net.Listener
	served    atomic.Int64
	conns     *connTracker
	serving   sync.WaitGroup // the accept loops
	exhausted chan struct{}
	sweepStop chan struct{} // ends sweepDeadlines, when Close is done
	sweepOnce sync.Once     // starts it, with the first request
	closeOnce sync.Once
	exhaust   sync.Once
	wsSem     chan struct{}
	// serverHeader is the Server header sent, "" for none.
	serverHeader string
	// logsResponseHeaders: the access log format reads response headers.
	logsResponseHeaders bool
	wsBudget            *bytebudget.Budget // websocket message bytes read and not yet in Python
	h1                  *h1Server          // plain HTTP/1.1 (h1conn.go)
}

// New makes a Server; its Funcs must be given to the interpreter, then Start.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.LimitConcurrency <= 0 {
		cfg.LimitConcurrency = 1024
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	if len(cfg.Binds) == 0 {
		cfg.Binds = []string{"127.0.0.1:8000"}
	}
	if !strings.Contains(cfg.App, ":") && !cfg.Detect {
		if cfg.ASGI {
			cfg.App += ":app"
		} else {
			cfg.App += ":application"
		}
	}
	if cfg.Lifespan == "" {
		cfg.Lifespan = "auto"
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.WebSocketBuffer <= 0 {
		cfg.WebSocketBuffer = DefaultWebSocketBuffer
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 5 * time.Second
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("web: --certfile and --keyfile go together")
	}
	if cfg.Factory {
		cfg.App += "()" // tells _hornbeam_web to call it once for the app
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.WSMax <= 0 {
		cfg.WSMax = 4096
	}
	if cfg.WSPingInterval == 0 {
		cfg.WSPingInterval = 20 * time.Second
	}
	if cfg.WSPingTimeout <= 0 {
		cfg.WSPingTimeout = 20 * time.Second
	}
	srv := &Server{cfg: cfg, log: cfg.Logger,
		wsSem: make(chan struct{}, cfg.WSMax), exhausted: make(chan struct{}), sweepStop: make(chan struct{}),
		conns: newConnTracker(cfg.HeaderTimeout, cfg.MaxHeaderBytes), serverHeader: "hornbeam",
		wsBudget: bytebudget.New(cfg.WebSocketBuffer)}
	if cfg.NoServerHeader {
		srv.serverHeader = ""
	}
	srv.logsResponseHeaders = cfg.AccessLog != nil && cfg.AccessFormat != nil && cfg.AccessFormat.readsResponseHeaders()
	srv.h1 = &h1Server{handler: srv, maxHeader: cfg.MaxHeaderBytes, headerTimeout: cfg.HeaderTimeout,
		keepAlive: cfg.KeepAlive, log: cfg.Logger}
	return srv, nil
}

// caller runs a Python function: the interpreter, or a fake in unit tests.
type caller interface {
	Call(ctx context.Context, module, function string, args []byte) ([]byte, error)
	CallOn(ctx context.Context, lane pybridge.Lane, module, function string, args []byte) ([]byte, error)
}

// interp returns the caller given to Start.
func (s *Server) interp() caller {
	c, _ := s.py.Load().(caller)
	return c
}

// Start runs the ASGI lifespan startup, then listens on every bind and serves with py.
func (s *Server) Start(py *pybridge.Interpreter) error { return s.start(py) }

func (s *Server) start(py caller) error {
	s.py.Store(py)
	// The binds first: a port in use is reported before the app is imported.
	lns := s.cfg.Listeners
	if lns == nil {
		for _, b := range s.cfg.Binds {
			ln, err := Listen(b)
			if err != nil {
				for _, ln := range lns {
					ln.Close()
				}
				return err
			}
			lns = append(lns, ln)
		}
	}
	if err := s.load(py); err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	if s.cfg.ASGI {
		args, _ := cbor.Marshal([]any{s.cfg.App, s.cfg.Lifespan})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := py.Call(ctx, "_hornbeam_web.asgi", "lifespan_startup", args)
		cancel()
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			s.logPyError("ASGI lifespan startup failed", err)
			return fmt.Errorf("web: ASGI lifespan startup: %w", err)
		}
		var how string
		cbor.Unmarshal(out, &how)
		s.log.Info("lifespan", "startup", how)
	}
	// What is alive once the app has started lives as long as the node: out
	// of the cyclic collector's reach, it is not scanned again by every full
	// collection (25 ms each for a FastAPI node's heap, once per ~12,000
	// requests, 2.5 µs a request on average).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	if _, err := py.Call(ctx, "_hornbeam_web", "freeze", nil); err != nil {
		s.log.Warn("the app's objects stay under the garbage collector", "err", err)
	}
	cancel()
	var tlsConf *tls.Config
	if s.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("web: loading --certfile/--keyfile: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	}
	if tlsConf == nil {
		// Plain HTTP/1.1: our own server (h1conn.go).
		s.lns = lns
		for _, ln := range lns {
			s.serving.Add(1)
			go func() {
				defer s.serving.Done()
				s.h1.serve(ln)
			}()
			s.log.Info("listening", "addr", ln.Addr().String(), "app", s.cfg.App)
		}
		return nil
	}
	for _, ln := range lns {
		hs := &http.Server{Handler: s, MaxHeaderBytes: s.cfg.MaxHeaderBytes,
			IdleTimeout: s.cfg.KeepAlive, TLSConfig: tlsConf.Clone(), ConnState: s.conns.connState,
			ConnContext: withClock, ReadHeaderTimeout: s.cfg.HeaderTimeout + time.Second, // a backstop to the header clock
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
		// TLS ends in our listener (tlslisten.go); net/http then serves
		// HTTP/2 for an "h2" *tls.Conn, as TLSConfig names it.
		s.lns = append(s.lns, newTLSListener(ln, tlsConf.Clone(), s.cfg.HeaderTimeout, maxHandshakes, s.log))
		s.https = append(s.https, hs)
	}
	for i, hs := range s.https { // s.lns is complete before any request can retire it
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			hs.Serve(s.lns[i])
		}()
		s.log.Info("listening", "addr", s.lns[i].Addr().String(), "app", s.cfg.App)
	}
	return nil
}

// load imports the app before anything is served, whatever -k: a worker
// whose app is broken then fails to start (and a reload keeps the workers it
// would have replaced) instead of answering 500 to every request. Without
// -k it also learns whether the app is ASGI or WSGI.
func (s *Server) load(py caller) error {
	fn, args := "check", []any{s.cfg.App, "application"}
	if s.cfg.ASGI {
		args[1] = "app"
	}
	if s.cfg.Detect {
		fn, args = "detect", []any{s.cfg.App}
	}
	data, _ := cbor.Marshal(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := py.Call(ctx, "_hornbeam_web", fn, data)
	if err != nil {
		s.logPyError("loading the app failed", err, "app", s.cfg.App)
		return fmt.Errorf("web: loading %s: %w", s.cfg.App, err)
	}
	if !s.cfg.Detect {
		return nil
	}
	var res []string
	if err := cbor.Unmarshal(out, &res); err != nil || len(res) != 2 {
		return fmt.Errorf("web: detecting the app's protocol: %v", err)
	}
	s.cfg.App, s.cfg.ASGI = res[0], res[1] == "asgi"
	s.log.Info("worker class detected", "app", s.cfg.App, "class", res[1])
	return nil
}

// Listen opens a bind: HOST:PORT, or unix:PATH (replacing a stale socket file).
func Listen(bind string) (net.Listener, error) {
	network, addr := "tcp", bind
	if p, ok := strings.CutPrefix(bind, "unix:"); ok {
		network, addr = "unix", p
		os.Remove(p)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("web: listening on %s: %w", bind, err)
	}
	return ln, nil
}

// Exhausted is closed once the server has taken MaxRequests requests.
func (s *Server) Exhausted() <-chan struct{} { return s.exhausted }

// Addrs returns the listening addresses.
func (s *Server) Addrs() []string {
	var out []string
	for _, ln := range s.lns {
		out = append(out, ln.Addr().String())
	}
	return out
}

// Close stops accepting, waits (up to ctx) for requests in flight to finish,
// then runs the ASGI lifespan shutdown.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	// Drain (see connTracker): stop accepting, let every plain HTTP/1
	// connection answer what it has read or is about to read, closing each
	// once idle; only then Shutdown, for TLS and HTTP/2 connections.
	for _, hs := range s.https {
		hs.SetKeepAlivesEnabled(false)
	}
	s.h1.conns.draining.Store(true)
	for _, ln := range s.lns {
		ln.Close()
	}
	served := make(chan struct{})
	go func() { s.serving.Wait(); close(served) }()
	select {
	case <-served: // every accepted connection is tracked now
	case <-ctx.Done():
	}
	for s.conns.drainStep()+s.h1.conns.drainStep() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	for _, ln := range s.lns { // TLS handshakes still in flight past ctx
		if tl, ok := ln.(*tlsListener); ok {
			tl.abort()
		}
	}
	for _, hs := range s.https {
		if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if py := s.interp(); s.cfg.ASGI && py != nil {
		if _, err := py.Call(ctx, "_hornbeam_web.asgi", "lifespan_shutdown", nil); err != nil {
			errs = append(errs, fmt.Errorf("web: ASGI lifespan shutdown: %w", err))
		}
	}
	s.closeOnce.Do(func() { close(s.sweepStop) })
	return errors.Join(errs...)
}

// InPlaceArgs are the Funcs that may read their arguments in place (see
// pybridge.Config.InPlaceArgs): http_write's are a streamed response's
// pieces, which it writes before it returns and does not keep.
func (s *Server) InPlaceArgs() map[string]bool {
	return map[string]bool{"http_write": true}
}

// Funcs are the Go functions the Python side calls during a request.
func (s *Server) Funcs() map[string]pybridge.GoFunc {
	return map[string]pybridge.GoFunc{
		"http_read":            s.pyRead,
		"http_start":           s.pyStart,
		"http_write":           s.pyWrite,
		"http_wait_disconnect": s.pyWaitDisconnect,
		"ws_accept":            s.pyWSAccept,
		"ws_receive":           s.pyWSReceive,
		"ws_send_many":         s.pyWSSendMany,
		"ws_close":             s.pyWSClose,
	}
}

// readAheadBytes is how much of a request body is read before the app is
// called (all of a body up to this size): the app then never waits on a
// slow client for it.
const readAheadBytes = 64 << 10

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	note := headersRead(r)
	r = s.proxied(r)
	if m := s.cfg.MaxRequests; m > 0 && s.served.Add(1) == m {
		// Stop accepting at once (other workers, or this one's successor,
		// take new connections from the shared socket); Close finishes the rest.
		s.exhaust.Do(func() {
			for _, ln := range s.lns {
				ln.Close()
			}
			close(s.exhausted)
		})
	}
	req := &request{w: w, r: r, rc: *http.NewResponseController(w), lend: s.cfg.ASGI,
		server: s.serverHeader, bodyTimeout: s.cfg.BodyTimeout, headerMap: s.logsResponseHeaders}
	s.cfg.Metrics.HTTPBegin()
	defer func() {
		req.end()
		s.access(req, t0)
		if m := s.cfg.Metrics; m != nil {
			m.HTTPEnd(req.status, time.Since(t0))
		}
	}()
	if note != "" {
		s.log.Warn("request refused: ambiguous framing", "remote", r.RemoteAddr, "why", note)
		req.fail(http.StatusBadRequest, "bad request: "+note+"\n")
		return
	}
	s.dropUnderscoreHeaders(r)
	if s.cfg.ASGI && isWebSocket(r) {
		s.serveWebSocket(req)
		return
	}
	// A counter, not a channel's slots: one atomic add each way. A refused
	// request gives its count back before its 503 is written, which a slow
	// client may hold up.
	if s.active.Add(1) > int64(s.cfg.LimitConcurrency) {
		s.active.Add(-1)
		req.fail(http.StatusServiceUnavailable, "server busy: concurrency limit reached\n")
		return
	}
	defer s.active.Add(-1)
	whole, more, called := true, false, t0
	if r.ContentLength != 0 {
		var err error
		if whole, err = req.readAhead(readAheadBytes); err != nil {
			s.bodyFailed(req, err)
			return
		}
		more = !whole
		called = time.Now() // --timeout is the app's: reading ahead is not counted
	}
	// A client that leaves does not cancel the app: as with uvicorn and
	// gunicorn, an ASGI app learns it from receive() (http.disconnect) and a
	// WSGI app from its next write; only --timeout stops the app.
	s.sweepOnce.Do(func() { go s.sweepDeadlines(s.sweepStop) })
	req.app.parent, req.app.deadline = r.Context(), called.Add(s.cfg.Timeout)
	id := s.nextID.Add(1)
	s.reqs.Store(id, req)
	defer s.reqs.Delete(id)
	req.readMu.Lock()
	pre := req.pre // b"" when nil: a byte string either way
	req.pre = nil  // handed to the app with the request
	req.readMu.Unlock()
	buf := argBufs.Get().(*[]byte)
	module, args := "_hornbeam_web.wsgi", slices.Grow((*buf)[:0], 512+len(pre))
	if s.cfg.ASGI {
		module = "_hornbeam_web.asgi"
		args = cborText(cborUint(cborArray(args, 5), id), s.cfg.App)
		args = cborBool(cborBytes(s.appendScope(args, r, nil), pre), more)
	} else {
		args = cborText(cborUint(cborArray(args, 3), id), s.cfg.App)
		args = s.appendEnviron(args, r, pre, more)
	}
	out, release, err := s.callApp(&req.app, w, module, args)
	defer release() // after the response is written: its body may be out
	if err == nil && cap(args) <= maxPooledArgs {
		// Python has read the arguments (a call that failed may not have
		// yet, and then they are left to it).
		*buf = args[:0]
		argBufs.Put(buf)
	}
	timedOut := errors.Is(err, context.DeadlineExceeded)
	badBody, slow := req.endBody(timedOut)
	switch {
	case err == nil:
	case timedOut:
		s.log.Warn("app timed out", "path", r.URL.Path, "timeout", s.cfg.Timeout)
		req.abort(http.StatusGatewayTimeout, "the app did not answer in time\n")
		return
	case slow:
		s.log.Info("request body too slow", "path", r.URL.Path, "remote", r.RemoteAddr, "body_timeout", s.cfg.BodyTimeout)
		req.fail(http.StatusRequestTimeout, "request body too slow\n")
		return
	case r.Context().Err() != nil: // the client went away
		s.logAppError(req, err)
		req.end()
		return
	case badBody != nil:
		s.log.Warn("malformed request body", "path", r.URL.Path, "err", badBody)
		req.fail(http.StatusBadRequest, "malformed request body\n")
		return
	default:
		s.logAppError(req, err)
		req.fail(http.StatusInternalServerError, "internal server error\n")
		return
	}
	res, err := decodeResponse(out)
	if err != nil {
		s.log.Error("bad response from the app", "path", r.URL.Path, "err", err)
		req.fail(http.StatusInternalServerError, "internal server error\n")
		return
	}
	if !res.Streamed {
		if res.Body == nil {
			res.Body = []byte{}
		}
		if err := req.start(res.status(), res.Headers, res.Body); err != nil {
			s.log.Error("bad response from the app", "path", r.URL.Path, "err", err)
			req.fail(http.StatusInternalServerError, "internal server error\n")
		}
	}
}

// argBufs hold the encoded arguments of an app's call, used again once the
// call has returned: a request is served without making garbage of them.
var argBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledArgs: argument buffers larger than this (a body read ahead) are
// left to the collector rather than kept for requests that seldom need them.
const maxPooledArgs = 4 << 10

// borrower is the interpreter's CallBorrowed.
type borrower interface {
	CallBorrowed(ctx context.Context, o pybridge.CallOpts, module, function string, args []byte) ([]byte, func(), error)
}

// callApp calls the app's handle. On a plain HTTP/1.1 connection the result
// stays in the memory Python's encoder wrote it to: the response is written
// from it before ServeHTTP returns (h1response keeps no reference to a body
// once Write returns), then release frees it. Under TLS net/http's HTTP/2
// may still hold a body after Write returns (a stream reset mid-write), so
// there the result is copied.
func (s *Server) callApp(ctx context.Context, w http.ResponseWriter, module string, args []byte) ([]byte, func(), error) {
	py := s.interp()
	if b, ok := py.(borrower); ok {
		if _, plain := w.(*h1response); plain {
			return b.CallBorrowed(ctx, pybridge.CallOpts{Lane: pybridge.LaneHTTP}, module, "handle", args)
		}
	}
	out, err := py.CallOn(ctx, pybridge.LaneHTTP, module, "handle", args)
	return out, func() {}, err
}

// bodyFailed answers a request whose body could not be read ahead.
func (s *Server) bodyFailed(req *request, err error) {
	badBody, slow := req.endBody(false)
	switch {
	case slow:
		s.log.Info("request body too slow", "path", req.r.URL.Path, "remote", req.r.RemoteAddr, "body_timeout", s.cfg.BodyTimeout)
		req.fail(http.StatusRequestTimeout, "request body too slow\n")
	case badBody != nil:
		s.log.Warn("malformed request body", "path", req.r.URL.Path, "err", badBody)
		req.fail(http.StatusBadRequest, "malformed request body\n")
	default: // the client went away
		s.log.Debug("reading the request body", "path", req.r.URL.Path, "err", err)
		req.end()
	}
}

// logAppError logs the error a call of the app ended with while it served
// req. A client that left mid-request is not the app's failure: once the app
// has been told (ClientDisconnected from a send, a write or a body read),
// what it raises, that exception or another a framework made of it, is
// logged at debug level, as gunicorn and uvicorn log such a cut; and once
// the client has gone, an error that is not the app's exception (the call
// ended with the connection's context) is not logged at all.
func (s *Server) logAppError(req *request, err error) {
	r := req.r
	pe := (*pybridge.Error)(nil)
	switch isPy := errors.As(err, &pe); {
	case isPy && (req.clientGone.Load() || pe.Type == clientGoneClass):
		s.log.Debug("the client left during the response", "path", r.URL.Path, "type", pe.Type, "err", pe.Message)
	case isPy || r.Context().Err() == nil:
		s.logPyError("app raised", err, "path", r.URL.Path)
	}
}

// logPyError logs err with attrs; a Python exception comes with its
// traceback, written as Python prints it to Config.Tracebacks when set (a
// terminal), else as one attribute of the log line.
func (s *Server) logPyError(msg string, err error, attrs ...any) {
	var pe *pybridge.Error
	if !errors.As(err, &pe) {
		s.log.Error(msg, append(attrs, "err", err)...)
		return
	}
	attrs = append(attrs, "type", pe.Type, "message", pe.Message)
	if s.cfg.Tracebacks == nil || pe.Traceback == "" {
		s.log.Error(msg, append(attrs, "traceback", pe.Traceback)...)
		return
	}
	s.log.Error(msg, attrs...)
	tb := pe.Traceback
	if !strings.HasSuffix(tb, "\n") {
		tb += "\n"
	}
	io.WriteString(s.cfg.Tracebacks, tb)
}

// dropUnderscoreHeaders removes header names with an underscore: in a WSGI
// environ (and in Django's META under ASGI) X_User and X-User are one name,
// so a client could pass one for the other, as nginx and gunicorn prevent.
func (s *Server) dropUnderscoreHeaders(r *http.Request) {
	for k := range r.Header {
		if strings.IndexByte(k, '_') >= 0 {
			s.log.Debug("header with an underscore dropped", "header", k, "remote", r.RemoteAddr)
			delete(r.Header, k)
		}
	}
}

// access writes a common log format line.
func (s *Server) access(req *request, t0 time.Time) {
	if s.cfg.AccessLog == nil {
		return
	}
	if s.cfg.AccessFormat != nil {
		s.cfg.AccessFormat.write(s.cfg.AccessLog, req, t0)
		return
	}
	r := req.r
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	fmt.Fprintf(s.cfg.AccessLog, "%s - - [%s] \"%s %s %s\" %d %d %.6f\n", host,
		t0.Format("02/Jan/2006:15:04:05 -0700"), r.Method, r.URL.RequestURI(), r.Proto,
		req.status, req.written, time.Since(t0).Seconds())
}
