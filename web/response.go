package web

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// request is one request's state while the app runs it. ServeHTTP and the
// callbacks of the app's thread (or task) both use it, so, as net/http's
// TimeoutHandler does, it has one owner at a time: mu guards the response
// (and every use of w), readMu the request body. Once ended (ServeHTTP has
// answered or is returning), callbacks get errEnded and never touch w.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	rc     http.ResponseController
	server string // the Server header, "" for none
	// headerMap: the access log reads the response's headers, so they go
	// through w.Header() even where the writer could do without it.
	headerMap bool
	// app is the context of the app's call, its deadline set before the
	// request is in s.reqs (a websocket has none).
	app appDeadline

	readMu      sync.Mutex
	bodyTimeout time.Duration
	pre         []byte // the body read ahead and not yet given to the app
	bodyEOF     bool   // the whole body has been read
	bodyEnded   bool   // ServeHTTP is returning: the body is no longer ours
	badBody     error  // the body could not be read: malformed (chunking, length)
	slowBody    bool   // the client stalled longer than the body timeout
	// clientGone: a read or write found the connection gone and the app was
	// told so (ClientDisconnected); what it raises afterwards is that cut.
	clientGone atomic.Bool

	// lend: a streamed body may be written by the event loop's thread
	// (ASGI on a plain connection); direct is the socket while it is lent.
	lend   bool
	direct *pybridge.DirectWriter

	mu      sync.Mutex
	ended   bool
	ws      *wsConn
	started bool
	status  int
	written int64
}

// errFraming reports app-set headers that contradict the response.
var errFraming = errors.New("framing headers contradict the response")

// readBody reads up to len(p) bytes of the body, waiting at most the body
// timeout for each piece. Reads of one request are serialised.
func (req *request) readBody(p []byte) (int, bool, error) {
	req.readMu.Lock()
	defer req.readMu.Unlock()
	if req.bodyEnded {
		return 0, false, errEnded
	}
	got := 0
	if len(req.pre) > 0 {
		got = copy(p, req.pre)
		req.pre = req.pre[got:]
	}
	for got < len(p) && !req.bodyEOF {
		req.rc.SetReadDeadline(time.Now().Add(req.bodyTimeout))
		n, err := req.r.Body.Read(p[got:])
		got += n
		if err == io.EOF {
			req.bodyEOF = true
		} else if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				req.slowBody = true
			case errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF):
				// The connection failed, or ended before the body did: the
				// client has gone, and a 400 would reach no one.
				req.bodyEOF = true
				return got, false, req.gone(fmt.Errorf("reading the request body: %w", err))
			default:
				// Not the connection failing: the body itself is malformed,
				// which the client is told with 400 unless the app has answered.
				req.badBody = err
			}
			req.bodyEOF = true
			return got, false, fmt.Errorf("reading the request body: %w", err)
		}
	}
	if req.bodyEOF {
		// net/http now reads ahead to see the client leave: no deadline for it.
		req.rc.SetReadDeadline(time.Time{})
	}
	return got, !req.bodyEOF || len(req.pre) > 0, nil
}

// readAhead reads up to limit bytes of the body before the app is called,
// so that a client sending slowly costs no thread of the app's; it reports
// whether the whole body fitted.
func (req *request) readAhead(limit int) (bool, error) {
	size := limit
	if cl := req.r.ContentLength; cl >= 0 && cl < int64(limit) {
		size = int(cl)
	}
	buf := make([]byte, size)
	n, more, err := req.readBody(buf)
	if err != nil {
		return false, err
	}
	req.readMu.Lock()
	defer req.readMu.Unlock()
	req.pre = buf[:n]
	return !more || req.r.ContentLength == int64(n), nil
}

// endBody ends the app's use of the body; with interrupt, a read in flight
// is cut short (the app is past its time).
func (req *request) endBody(interrupt bool) (badBody error, slow bool) {
	if interrupt {
		req.rc.SetReadDeadline(time.Now())
	}
	req.readMu.Lock()
	defer req.readMu.Unlock()
	req.bodyEnded = true
	return req.badBody, req.slowBody
}

// fail answers code unless the response has started; either way the
// request has ended for the app's callbacks.
func (req *request) fail(code int, msg string) {
	req.mu.Lock()
	defer req.mu.Unlock()
	req.failLocked(code, msg)
}

func (req *request) failLocked(code int, msg string) {
	req.unlendLocked()
	req.ended = true
	if req.started {
		// Too late for a status: the connection is cut, so that the client
		// sees a cut response (as with gunicorn and uvicorn), not the last
		// chunk net/http would write and with it a whole-looking one.
		req.rc.SetWriteDeadline(time.Now())
		return
	}
	req.started, req.status = true, code
	h := req.w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if req.server != "" {
		h.Set("Server", req.server)
	}
	if code == http.StatusRequestTimeout || code == http.StatusBadRequest {
		h.Set("Connection", "close")
	}
	req.w.WriteHeader(code)
	n, _ := io.WriteString(req.w, msg)
	req.written += int64(n)
}

// abort ends the request from ServeHTTP's side while the app may still be
// writing (a timeout): a write blocked on the client is cut, then code is
// answered if the response has not started.
func (req *request) abort(code int, msg string) {
	req.mu.Lock()
	started := req.started
	req.mu.Unlock()
	if started {
		req.rc.SetWriteDeadline(time.Now())
	}
	req.fail(code, msg)
}

// start sends the status and the app's headers; body is the whole body, or
// nil when it streams.
func (req *request) start(status string, headers [][2]string, body []byte) error {
	req.mu.Lock()
	defer req.mu.Unlock()
	if req.ended {
		return errEnded
	}
	if req.started {
		return errors.New("the response has already started")
	}
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 100 || code > 999 {
		return fmt.Errorf("bad status %q", status)
	}
	length, err := checkFraming(req.r.Method, code, headers, body)
	if err != nil {
		return err
	}
	req.started, req.status = true, code
	if w, ok := req.w.(*h1response); ok && !req.headerMap {
		// The head is written from the app's list, in its order: no map.
		w.writeApp(code, headers, length, req.server)
	} else {
		h := req.w.Header()
		for _, kv := range headers {
			if !isFramingHeader(kv[0]) {
				h.Add(kv[0], kv[1])
			}
		}
		if length >= 0 {
			h.Set("Content-Length", strconv.FormatInt(length, 10))
		}
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = nil // as the app said: no type (net/http would sniff one)
		}
		if req.server != "" && h.Get("Server") == "" {
			h.Set("Server", req.server)
		}
		req.w.WriteHeader(code)
	}
	if body != nil {
		n, _ := req.w.Write(body)
		req.written += int64(n)
	}
	return nil
}

// write sends a piece of a streamed body. handle names the socket while it
// is lent to the event loop's thread for the next pieces (0: not lent).
func (req *request) write(body []byte) (handle uint64, err error) {
	req.mu.Lock()
	defer req.mu.Unlock()
	if req.ended {
		return 0, errEnded
	}
	if !req.started {
		return 0, errors.New("body before the status")
	}
	if req.direct != nil {
		if err := req.takeBack(false); err != nil {
			return 0, req.gone(err)
		}
	}
	n, err := req.w.Write(body)
	req.written += int64(n)
	if err == nil {
		err = req.rc.Flush()
	}
	if err != nil {
		req.dropLent()
		if errors.Is(err, http.ErrContentLength) || errors.Is(err, http.ErrBodyNotAllowed) {
			return 0, fmt.Errorf("%w: %w", errFraming, err) // the app's mistake, not a cut
		}
		return 0, req.gone(err)
	}
	w, plain := req.w.(*h1response)
	switch {
	case req.direct != nil:
		req.direct.Give(w.left())
	case req.lend && plain && w.lendable():
		req.direct, _ = pybridge.LendSocket(w.c.fd, w.chunked, w.left())
	}
	if req.direct != nil {
		return req.direct.Handle(), nil
	}
	return 0, nil
}

// takeBack takes the socket back from the loop's thread (mu held) and
// counts what it wrote: until write lends it again, or for good when final
// or when what the loop left could not be written.
func (req *request) takeBack(final bool) error {
	l := req.direct.Take()
	req.written += l.Written
	err := req.w.(*h1response).absorb(l, final)
	if final || err != nil {
		req.dropLent()
	}
	return err
}

// dropLent ends the lending of a socket Go has taken back.
func (req *request) dropLent() {
	if req.direct != nil {
		req.direct.End()
		req.direct = nil
	}
}

// unlendLocked takes the socket back for good (mu held): no piece from the
// loop reaches it after this.
func (req *request) unlendLocked() {
	if req.direct != nil {
		req.takeBack(true)
	}
}

// gone records that the connection failed under err, which it returns as
// the error Python raises: ClientDisconnected.
func (req *request) gone(err error) error {
	req.clientGone.Store(true)
	return &clientGoneError{err}
}

// clientGoneError is a write the client can no longer receive: it closed the
// connection. Python sees _hornbeam_web.ClientDisconnected, an OSError, as
// the ASGI specification asks of a send on a closed connection; gunicorn and
// uvicorn log such a cut at debug level, not as the app's failure.
type clientGoneError struct{ err error }

// clientGoneClass is the Python class of clientGoneError, as Error.Type names it.
const clientGoneClass = "_hornbeam_web.ClientDisconnected"

func (e *clientGoneError) Error() string       { return "client gone: " + e.err.Error() }
func (e *clientGoneError) Unwrap() error       { return e.err }
func (e *clientGoneError) PythonClass() string { return "_hornbeam_web:ClientDisconnected" }
func (e *clientGoneError) PythonAttrs() []byte { return nil }

// end marks the request ended for the callbacks; ServeHTTP is returning.
func (req *request) end() {
	req.mu.Lock()
	req.unlendLocked()
	req.ended = true
	req.mu.Unlock()
}

// checkFraming refuses framing headers that contradict each other or the
// body (body nil: streamed): the server frames the response, and two parsers
// must never read it differently. It returns the Content-Length to send: the
// app's, or the whole body's; -1 when the body streams without one.
func checkFraming(method string, code int, headers [][2]string, body []byte) (int64, error) {
	if code < 200 {
		return -1, fmt.Errorf("%w: status %d outside an upgrade", errFraming, code)
	}
	length := int64(-1)
	for _, kv := range headers {
		switch {
		case asciiEqualFold(kv[0], "Content-Length"):
			n, err := strconv.ParseInt(strings.TrimSpace(kv[1]), 10, 64)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return -1, fmt.Errorf("%w: Content-Length %q", errFraming, kv[1])
			}
			length = n
		case asciiEqualFold(kv[0], "Transfer-Encoding"):
			if !strings.EqualFold(strings.TrimSpace(kv[1]), "chunked") {
				return -1, fmt.Errorf("%w: Transfer-Encoding %q (the server frames the body)", errFraming, kv[1])
			}
		}
	}
	bodyless := method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	switch {
	case length >= 0 && body != nil && !bodyless && int64(len(body)) != length:
		return -1, fmt.Errorf("%w: Content-Length %d with a body of %d bytes", errFraming, length, len(body))
	case length >= 0:
		return length, nil
	case body != nil && !bodyless:
		// The whole body is here: say its length instead of chunking it.
		return int64(len(body)), nil
	}
	return -1, nil
}

// isFramingHeader: the server writes these itself, from checkFraming's length.
func isFramingHeader(name string) bool {
	return asciiEqualFold(name, "Content-Length") || asciiEqualFold(name, "Transfer-Encoding")
}

// appResponse is what handle returns: [status, headers, body, streamed].
type appResponse struct {
	_        struct{} `cbor:",toarray"`
	Status   any      // "200 OK" (WSGI) or 200 (ASGI)
	Headers  headerList
	Body     []byte
	Streamed bool
}

// status is the status as text: WSGI's "200 OK" as is, ASGI's 200 in decimal.
func (r appResponse) status() string {
	switch v := r.Status.(type) {
	case string:
		return v
	case uint64:
		return strconv.FormatUint(v, 10)
	}
	return fmt.Sprint(r.Status)
}

// decodeResponse decodes handle's result with the body aliasing out rather
// than copied: a whole body is often large, and each copy is garbage. The
// common shape is read by hand (the generic decoder cost more than the app
// did on a small response); anything else goes to the generic decoder.
func decodeResponse(out []byte) (appResponse, error) {
	if res, ok := decodeResponseFast(out); ok {
		return res, nil
	}
	var res appResponse
	return res, cbor.Unmarshal(out, &res)
}

func decodeResponseFast(b []byte) (res appResponse, ok bool) {
	if len(b) == 0 || b[0] != 0x84 {
		return res, false
	}
	b = b[1:]
	major, n, b, ok := cborReadHead(b)
	switch {
	case !ok:
		return res, false
	case major == 0:
		res.Status = n
	case major == 3 && uint64(len(b)) >= n:
		res.Status, b = string(b[:n]), b[n:]
	default:
		return res, false
	}
	res.Headers, b, ok = readHeaderList(b)
	if !ok {
		return res, false
	}
	body, b, ok := byteString(b)
	if !ok || len(b) != 1 || (b[0] != 0xf4 && b[0] != 0xf5) {
		return appResponse{}, false
	}
	res.Body, res.Streamed = body, b[0] == 0xf5
	return res, true
}

// cborReadHead reads a definite-length CBOR item head.
func cborReadHead(b []byte) (major byte, n uint64, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, 0, nil, false
	}
	major, info := b[0]>>5, b[0]&0x1f
	switch {
	case info < 24:
		return major, uint64(info), b[1:], true
	case info <= 27:
		size := 1 << (info - 24)
		if len(b) < 1+size {
			return 0, 0, nil, false
		}
		for _, c := range b[1 : 1+size] {
			n = n<<8 | uint64(c)
		}
		return major, n, b[1+size:], true
	}
	return 0, 0, nil, false
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
