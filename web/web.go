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
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"

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
	Factory         bool      // App is a callable that returns the app
	AccessLog       io.Writer // common log format; nil = none
	Logger          *slog.Logger
}

// Server serves one app.
type Server struct {
	cfg       Config
	log       *slog.Logger
	py        atomic.Pointer[pybridge.Interpreter]
	reqs      sync.Map // id -> *request, while Python holds the request
	nextID    atomic.Uint64
	sem       chan struct{}
	https     []*http.Server
	lns       []net.Listener
	served    atomic.Int64
	conns     *connTracker
	serving   sync.WaitGroup // the accept loops
	exhausted chan struct{}
	exhaust   sync.Once
	wsBudget  *budget // websocket message bytes read and not yet in Python
}

type request struct {
	w       http.ResponseWriter
	r       *http.Request
	done    chan struct{} // closed when ServeHTTP returns
	ws      *websocket.Conn
	started bool
	status  int
	written int64
	badBody error // the body could not be read: malformed (chunking, length)
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
	return &Server{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.LimitConcurrency),
		exhausted: make(chan struct{}), conns: newConnTracker(cfg.HeaderTimeout), wsBudget: newBudget(cfg.WebSocketBuffer)}, nil
}

// Start runs the ASGI lifespan startup, then listens on every bind and serves with py.
func (s *Server) Start(py *pybridge.Interpreter) error {
	s.py.Store(py)
	if s.cfg.Detect {
		if err := s.detect(py); err != nil {
			return err
		}
	}
	if s.cfg.ASGI {
		args, _ := cbor.Marshal([]any{s.cfg.App, s.cfg.Lifespan})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := py.Call(ctx, "_hornbeam_web.asgi", "lifespan_startup", args)
		cancel()
		if err != nil {
			return fmt.Errorf("web: ASGI lifespan startup: %w", err)
		}
		var how string
		cbor.Unmarshal(out, &how)
		s.log.Info("lifespan", "startup", how)
	}
	var tlsConf *tls.Config
	if s.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("web: loading --certfile/--keyfile: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	}
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
	for _, ln := range lns {
		hs := &http.Server{Handler: s, MaxHeaderBytes: s.cfg.MaxHeaderBytes,
			IdleTimeout: s.cfg.KeepAlive, TLSConfig: tlsConf, ConnState: s.conns.connState,
			ConnContext: withClock, ReadHeaderTimeout: s.cfg.HeaderTimeout + time.Second, // a backstop (TLS handshakes)
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
		s.lns = append(s.lns, slowClientListener{ln})
		s.https = append(s.https, hs)
	}
	for i, hs := range s.https { // s.lns is complete before any request can retire it
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			if tlsConf != nil {
				hs.ServeTLS(s.lns[i], "", "")
			} else {
				hs.Serve(s.lns[i])
			}
		}()
		s.log.Info("listening", "addr", s.lns[i].Addr().String(), "app", s.cfg.App)
	}
	return nil
}

// detect loads the app to learn whether it is ASGI or WSGI (-k not given).
func (s *Server) detect(py *pybridge.Interpreter) error {
	args, _ := cbor.Marshal([]any{s.cfg.App})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := py.Call(ctx, "_hornbeam_web", "detect", args)
	if err != nil {
		return fmt.Errorf("web: loading %s: %w", s.cfg.App, err)
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
	for _, ln := range s.lns {
		ln.Close()
	}
	served := make(chan struct{})
	go func() { s.serving.Wait(); close(served) }()
	select {
	case <-served: // every accepted connection is tracked now
	case <-ctx.Done():
	}
	for s.conns.drainStep() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	for _, hs := range s.https {
		if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if py := s.py.Load(); s.cfg.ASGI && py != nil {
		if _, err := py.Call(ctx, "_hornbeam_web.asgi", "lifespan_shutdown", nil); err != nil {
			errs = append(errs, fmt.Errorf("web: ASGI lifespan shutdown: %w", err))
		}
	}
	return errors.Join(errs...)
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
		"ws_send":              s.pyWSSend,
		"ws_close":             s.pyWSClose,
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	headersRead(r)
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
	req := &request{w: w, r: r, done: make(chan struct{})}
	defer func() { close(req.done); s.access(req, t0) }()
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		req.fail(http.StatusServiceUnavailable, "server busy: concurrency limit reached\n")
		return
	}
	id := s.nextID.Add(1)
	s.reqs.Store(id, req)
	defer s.reqs.Delete(id)
	if s.cfg.ASGI && isWebSocket(r) {
		s.serveWebSocket(req, id)
		return
	}
	module, args, err := "_hornbeam_web.wsgi", []byte(nil), error(nil)
	if s.cfg.ASGI {
		module = "_hornbeam_web.asgi"
		args, err = cbor.Marshal([]any{id, s.cfg.App, s.scope(r), r.ContentLength != 0})
	} else {
		args, err = cbor.Marshal([]any{id, s.cfg.App, s.environ(r)})
	}
	if err != nil {
		req.fail(http.StatusBadRequest, "bad request\n")
		return
	}
	// A client that leaves does not cancel the app: as with uvicorn and
	// gunicorn, an ASGI app learns it from receive() (http.disconnect) and a
	// WSGI app from its next write; only --timeout stops the app.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.Timeout)
	defer cancel()
	out, err := s.py.Load().CallOn(ctx, pybridge.LaneHTTP, module, "handle", args)
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("app timed out", "path", r.URL.Path, "timeout", s.cfg.Timeout)
		req.fail(http.StatusGatewayTimeout, "the app did not answer in time\n")
		return
	case r.Context().Err() != nil:
		return // the client went away
	case req.badBody != nil:
		s.log.Warn("malformed request body", "path", r.URL.Path, "err", req.badBody)
		req.fail(http.StatusBadRequest, "malformed request body\n")
		return
	default:
		var pe *pybridge.Error
		if errors.As(err, &pe) {
			s.log.Error("app raised", "path", r.URL.Path, "type", pe.Type, "message", pe.Message, "traceback", pe.Traceback)
		} else {
			s.log.Error("app failed", "path", r.URL.Path, "err", err)
		}
		req.fail(http.StatusInternalServerError, "internal server error\n")
		return
	}
	res, err := decodeResponse(out)
	if err != nil {
		s.log.Error("bad response from the app", "err", err)
		req.fail(http.StatusInternalServerError, "internal server error\n")
		return
	}
	if !res.Streamed {
		if !hasHeader(res.Headers, "Content-Length") {
			// The whole body is here: say its length instead of chunking it.
			w.Header().Set("Content-Length", strconv.Itoa(len(res.Body)))
		}
		if err := req.start(fmt.Sprint(res.Status), res.Headers); err != nil {
			s.log.Error("bad response from the app", "err", err)
			req.fail(http.StatusInternalServerError, "internal server error\n")
			return
		}
		n, _ := w.Write(res.Body)
		req.written += int64(n)
	}
}

func (req *request) fail(code int, msg string) {
	if req.started {
		return // too late for a status: the client sees a cut response
	}
	req.started, req.status = true, code
	req.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	req.w.WriteHeader(code)
	n, _ := io.WriteString(req.w, msg)
	req.written += int64(n)
}

func (req *request) start(status string, headers [][2]string) error {
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 100 || code > 999 {
		return fmt.Errorf("bad status %q", status)
	}
	h := req.w.Header()
	for _, kv := range headers {
		h.Add(kv[0], kv[1])
	}
	req.started, req.status = true, code
	req.w.WriteHeader(code)
	return nil
}

// latin1 decodes bytes as ISO-8859-1, as PEP 3333 wants for native strings.
func latin1(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

func (s *Server) environ(r *http.Request) map[string]any {
	path, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		path = r.URL.Path
	}
	script := strings.TrimSuffix(s.cfg.RootPath, "/")
	if script != "" && (path == script || strings.HasPrefix(path, script+"/")) {
		path = path[len(script):]
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	env := map[string]any{
		"REQUEST_METHOD":  r.Method,
		"SCRIPT_NAME":     latin1(script),
		"PATH_INFO":       latin1(path),
		"QUERY_STRING":    latin1(r.URL.RawQuery),
		"SERVER_NAME":     latin1(host),
		"SERVER_PORT":     port,
		"SERVER_PROTOCOL": r.Proto,
		"wsgi.url_scheme": scheme,
	}
	if ra, rp, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		env["REMOTE_ADDR"], env["REMOTE_PORT"] = ra, rp
	}
	var length any
	if r.ContentLength >= 0 {
		length = r.ContentLength
		env["CONTENT_LENGTH"] = strconv.FormatInt(r.ContentLength, 10)
	}
	env["hornbeam.content_length"] = length
	for k, vs := range r.Header {
		v := latin1(strings.Join(vs, ","))
		switch k {
		case "Content-Type":
			env["CONTENT_TYPE"] = v
		case "Content-Length":
		default:
			env["HTTP_"+strings.ReplaceAll(strings.ToUpper(k), "-", "_")] = v
		}
	}
	return env
}

// access writes a common log format line.
func (s *Server) access(req *request, t0 time.Time) {
	if s.cfg.AccessLog == nil {
		return
	}
	r := req.r
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	fmt.Fprintf(s.cfg.AccessLog, "%s - - [%s] \"%s %s %s\" %d %d %.6f\n", host,
		t0.Format("02/Jan/2006:15:04:05 -0700"), r.Method, r.URL.RequestURI(), r.Proto,
		req.status, req.written, time.Since(t0).Seconds())
}

// scope builds an ASGI 3 http scope. net/http keeps the order of values of one
// header name but not the order across names.
func (s *Server) scope(r *http.Request) map[string]any {
	path, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		path = r.URL.Path
	}
	root := strings.TrimSuffix(s.cfg.RootPath, "/")
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// As uvicorn: a proxy that mounts the app at root_path strips it from the
	// request, and path gets it back; a path that still has it keeps it once.
	raw := r.URL.EscapedPath()
	if root != "" && path != root && !strings.HasPrefix(path, root+"/") {
		path, raw = root+path, root+raw
	}
	headers := make([][2][]byte, 0, len(r.Header)+1)
	headers = append(headers, [2][]byte{[]byte("host"), []byte(r.Host)})
	for k, vs := range r.Header {
		lk := []byte(strings.ToLower(k))
		for _, v := range vs {
			headers = append(headers, [2][]byte{lk, []byte(v)})
		}
	}
	sc := map[string]any{
		"type":         "http",
		"asgi":         map[string]string{"version": "3.0", "spec_version": "2.3"},
		"http_version": strings.TrimPrefix(strings.TrimSuffix(r.Proto, ".0"), "HTTP/"),
		"method":       r.Method,
		"scheme":       scheme,
		"path":         path,
		"raw_path":     []byte(raw),
		"query_string": []byte(r.URL.RawQuery),
		"root_path":    root,
		"headers":      headers,
	}
	if h, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		pn, _ := strconv.Atoi(p)
		sc["client"] = []any{h, pn}
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if h, p, err := net.SplitHostPort(la.String()); err == nil {
			pn, _ := strconv.Atoi(p)
			sc["server"] = []any{h, pn}
		}
	}
	return sc
}

func hasHeader(headers [][2]string, name string) bool {
	for _, kv := range headers {
		if strings.EqualFold(kv[0], name) {
			return true
		}
	}
	return false
}

// appResponse is what handle returns: [status, headers, body, streamed].
type appResponse struct {
	_        struct{} `cbor:",toarray"`
	Status   any      // "200 OK" (WSGI) or 200 (ASGI)
	Headers  [][2]string
	Body     []byte
	Streamed bool
}

// decodeResponse decodes handle's result with the body aliasing out rather
// than copied: a whole body is often large, and each copy is garbage.
func decodeResponse(out []byte) (appResponse, error) {
	var res appResponse
	if len(out) > 0 && out[0] == 0x84 {
		rest, err := cbor.UnmarshalFirst(out[1:], &res.Status)
		if err == nil {
			rest, err = cbor.UnmarshalFirst(rest, &res.Headers)
		}
		if err == nil {
			if body, after, ok := byteString(rest); ok {
				res.Body = body
				if _, err = cbor.UnmarshalFirst(after, &res.Streamed); err == nil {
					return res, nil
				}
			}
		}
	}
	res = appResponse{}
	return res, cbor.Unmarshal(out, &res)
}

// byteString splits a definite-length CBOR byte string off the front of b.
func byteString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != 2 {
		return nil, nil, false
	}
	n, h := uint64(b[0]&0x1f), 1
	switch {
	case n < 24:
	case n <= 27:
		h += 1 << (n - 24)
		if len(b) < h {
			return nil, nil, false
		}
		n = 0
		for _, c := range b[1:h] {
			n = n<<8 | uint64(c)
		}
	default:
		return nil, nil, false
	}
	if uint64(len(b)-h) < n {
		return nil, nil, false
	}
	return b[h : h+int(n) : h+int(n)], b[h+int(n):], true
}
