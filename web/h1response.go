package web

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// h1response is the http.ResponseWriter of a plain HTTP/1.1 connection. A
// response whose length is known is written with the body in one system
// call when the handler returns; one that streams is chunked (HTTP/1.1) or
// ends with the connection (HTTP/1.0). It also serves
// http.ResponseController: deadlines, flushing, and hijacking for upgrades.
type h1response struct {
	c      *h1conn
	req    *http.Request
	header http.Header
	status int
	// fromApp: writeApp gave the head. app holds the app's headers, written
	// in its order instead of header's; appServer is added when it has no
	// Server header.
	fromApp   bool
	app       [][2]string
	appServer string

	wroteHeader bool  // WriteHeader was called
	headerSent  bool  // the head is in wbuf or written
	chunked     bool  // the body goes out chunked
	bodyless    bool  // HEAD, 204, 304: no body on the wire
	declared    int64 // the handler's Content-Length, -1 if none
	written     int64 // body bytes the handler wrote
	pending     []byte
	closeAfter  bool // the connection ends after this response
	failed      bool // a write failed
	hijacked    bool
	cut         atomic.Bool // a write deadline was set (from another goroutine)
}

// smallResponse is how much of a body of unknown length is held back, so
// that a response that ends soon goes out with a Content-Length, not chunked.
const smallResponse = 4096

func (w *h1response) reset(r *http.Request) {
	h := w.header
	if h == nil {
		h = make(http.Header, 8)
	} else {
		clear(h)
	}
	*w = h1response{c: w.c, req: r, header: h, declared: -1, pending: w.pending[:0]}
}

func (w *h1response) Header() http.Header { return w.header }

func (w *h1response) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		return // informational responses are the server's (100 Continue)
	}
	w.wroteHeader, w.status = true, code
	w.bodyless = w.req.Method == http.MethodHead || code == http.StatusNoContent ||
		code == http.StatusNotModified || code < 200
	if cl := w.header["Content-Length"]; len(cl) > 0 {
		if n, ok := parseLength(strings.TrimSpace(cl[0])); ok {
			w.declared = n
		} else {
			delete(w.header, "Content-Length")
		}
	}
}

// writeApp is WriteHeader for an app's response: the head comes from the
// app's headers as they are, without the map, with length (from
// checkFraming, -1 for none) as its Content-Length.
func (w *h1response) writeApp(code int, headers [][2]string, length int64, server string) {
	if w.wroteHeader || w.hijacked {
		return
	}
	w.WriteHeader(code)
	w.fromApp, w.app, w.appServer, w.declared = true, headers, server, length
}

func (w *h1response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.bodyless {
		if w.req.Method == http.MethodHead {
			w.written += int64(len(p))
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	if w.failed {
		return 0, errWriteFailed
	}
	w.written += int64(len(p))
	if !w.headerSent {
		if w.declared < 0 && len(w.pending)+len(p) <= smallResponse {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.sendHeader(w.declared < 0)
	}
	if err := w.body(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

var errWriteFailed = errors.New("writing to the client failed")

// lendable reports whether the rest of the body may be written by the event
// loop's thread (pybridge.DirectWriter): the head is out, nothing is held
// back, and each further piece goes to the socket as it is, framed as a
// chunk when chunked.
func (w *h1response) lendable() bool {
	return w.c.fd >= 0 && w.headerSent && !w.bodyless && !w.failed && !w.hijacked && !w.cut.Load() &&
		len(w.c.wbuf) == 0 && len(w.pending) == 0
}

// left is how many more body bytes the declared length allows; -1: no bound.
func (w *h1response) left() int64 {
	if w.declared < 0 {
		return -1
	}
	return w.declared - w.written
}

// absorb counts what the loop's thread wrote while the socket was lent, and
// writes the rest of a frame it began, which must go before anything else.
// When final (the response is ending, and the client may read nothing) that
// rest is not written: the response is cut.
func (w *h1response) absorb(l pybridge.Lent, final bool) error {
	w.written += l.Written
	switch {
	case l.Err != 0:
		return w.fail(&net.OpError{Op: "write", Net: "tcp", Addr: w.c.local, Err: os.NewSyscallError("sendmsg", l.Err)})
	case len(l.Carry) == 0:
		return nil
	case w.failed:
		return errWriteFailed
	case final:
		return w.fail(errWriteFailed)
	}
	if err := w.c.flush(l.Carry); err != nil {
		return w.fail(err)
	}
	return nil
}

// body adds p to the body on the wire.
func (w *h1response) body(p []byte) error {
	c := w.c
	if w.chunked {
		c.wbuf = strconv.AppendInt(c.wbuf, int64(len(p)), 16)
		c.wbuf = append(c.wbuf, '\r', '\n')
	}
	if len(p) >= 16<<10 { // large: written from the caller's slice
		if err := c.flush(p); err != nil {
			return w.fail(err)
		}
	} else {
		c.wbuf = append(c.wbuf, p...)
	}
	if w.chunked {
		c.wbuf = append(c.wbuf, '\r', '\n')
	}
	if len(c.wbuf) >= 32<<10 {
		if err := c.flush(nil); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func (w *h1response) fail(err error) error {
	w.failed, w.closeAfter = true, true
	return err
}

// sendHeader puts the response head in the write buffer, with the pending
// body; stream says the body's length is not known yet.
func (w *h1response) sendHeader(stream bool) {
	c := w.c
	w.headerSent = true
	h := w.header
	length := w.declared
	switch {
	case w.bodyless || length >= 0:
		if w.req.Method == http.MethodHead && length < 0 && !stream && w.written > 0 {
			length = w.written // as net/http: the length a GET would have had
		}
	case !stream:
		length = int64(len(w.pending))
	case w.req.ProtoMinor >= 1:
		w.chunked = true
	default:
		w.closeAfter = true // HTTP/1.0: the body ends with the connection
	}
	var conn []string
	hasDate := false
	if w.fromApp {
		for _, kv := range w.app {
			switch {
			case asciiEqualFold(kv[0], "Connection"):
				conn = append(conn, kv[1])
			case asciiEqualFold(kv[0], "Date"):
				hasDate = true
			}
		}
	} else {
		conn = h["Connection"]
		_, hasDate = h["Date"]
	}
	if w.req.Close || c.s.conns.draining.Load() || c.body.wouldClose.Load() || hasToken(conn, "close") || w.status == http.StatusSwitchingProtocols && !w.hijacked {
		w.closeAfter = true
	}
	b := c.wbuf
	if w.req.ProtoMinor == 0 {
		b = append(b, "HTTP/1.0 "...) // as net/http: the version the client speaks
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, statusText(w.status)...)
	b = append(b, '\r', '\n')
	if w.fromApp {
		b = w.appendAppHeaders(b)
	} else {
		b = w.appendHeaderMap(b)
	}
	if length >= 0 && w.status >= 200 && w.status != http.StatusNoContent && (w.status != http.StatusNotModified || w.declared >= 0) {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, length, 10)
		b = append(b, '\r', '\n')
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if !hasDate {
		b = c.s.date.append(b)
	}
	switch {
	case w.closeAfter && w.status != http.StatusSwitchingProtocols && w.req.ProtoMinor > 0:
		// HTTP/1.0 closes by default (RFC 9112 9.3): nothing to say.
		b = append(b, "Connection: close\r\n"...)
	case conn != nil:
	case w.c.head.keepHTTP10:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, '\r', '\n')
	c.wbuf = b
	if len(w.pending) > 0 {
		p := w.pending
		w.pending = w.pending[:0]
		w.body(p)
	}
}

// appendHeaderMap appends the handler's header map, sorted by name.
func (w *h1response) appendHeaderMap(b []byte) []byte {
	h := w.header
	var small [16]string
	keys := small[:0]
	for k, vs := range h {
		switch {
		case len(vs) == 0, k == "Content-Length", k == "Transfer-Encoding":
		case k == "Connection" && w.closeAfter:
			// Ours to say below: the connection closes whatever the app says.
		case !validToken(k):
			// A name with a line break would split the response: dropped,
			// as net/http drops it.
			w.c.s.log.Warn("response header with an invalid name dropped", "name", k)
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ':', ' ')
			b = appendFieldValue(b, v)
			b = append(b, '\r', '\n')
		}
	}
	return b
}

// appendAppHeaders appends the app's headers in its order, each name in
// the canonical form net/http gives it (content-type: Content-Type), and
// the Server header if the app has none.
func (w *h1response) appendAppHeaders(b []byte) []byte {
	hasServer := false
	for _, kv := range w.app {
		k := kv[0]
		switch {
		case isFramingHeader(k):
			continue // written below, from the checked length
		case w.closeAfter && asciiEqualFold(k, "Connection"):
			continue // ours to say below
		case !validToken(k):
			w.c.s.log.Warn("response header with an invalid name dropped", "name", k)
			continue
		case asciiEqualFold(k, "Server"):
			hasServer = true
		}
		b = appendCanonicalName(b, k)
		b = append(b, ':', ' ')
		b = appendFieldValue(b, kv[1])
		b = append(b, '\r', '\n')
	}
	if !hasServer && w.appServer != "" {
		b = append(b, "Server: "...)
		b = append(b, w.appServer...)
		b = append(b, '\r', '\n')
	}
	return b
}

// appendCanonicalName appends a token header name as
// textproto.CanonicalMIMEHeaderKey spells it: upper case at the start and
// after each hyphen, lower case elsewhere.
func appendCanonicalName(b []byte, k string) []byte {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}

// appendFieldValue appends a header value with line breaks made spaces (a
// value can never end the head), trimmed.
func appendFieldValue(b []byte, v string) []byte {
	v = strings.Trim(v, " \t")
	if strings.ContainsAny(v, "\r\n") {
		return append(b, strings.NewReplacer("\r", " ", "\n", " ").Replace(v)...)
	}
	return append(b, v...)
}

// finish ends the response when the handler has returned; it reports
// whether the connection can serve another request.
func (w *h1response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		w.sendHeader(false)
	} else if w.chunked && !w.failed {
		w.c.wbuf = append(w.c.wbuf, "0\r\n\r\n"...)
	}
	if w.declared >= 0 && w.written < w.declared && !w.bodyless {
		w.closeAfter = true // short: the client's framing is off
	}
	if !w.failed {
		if err := w.c.flush(nil); err != nil {
			w.fail(err)
		}
	}
	w.c.wbuf = w.c.wbuf[:0]
	return !w.closeAfter && !w.cut.Load()
}

// FlushError sends what the handler has written.
func (w *h1response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		w.sendHeader(w.declared < 0)
	}
	if w.failed {
		return errWriteFailed
	}
	if err := w.c.flush(nil); err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *h1response) Flush() { w.FlushError() }

func (w *h1response) SetReadDeadline(t time.Time) error { return w.c.setReadDeadline(t) }

// SetWriteDeadline: the server sets one only to cut a response short (the
// app failed or ran out of time), after which the connection ends.
func (w *h1response) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() {
		w.cut.Store(true)
	}
	return w.c.c.SetWriteDeadline(t)
}

// Hijack hands the connection to the handler (a websocket): the head of a
// 101 response is written first, and bytes already read come with the reader.
func (w *h1response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c := w.c
	c.stopWatch()
	w.hijacked = true
	if w.wroteHeader {
		w.headerSent = false
		w.sendHeader(false)
		if err := c.flush(nil); err != nil {
			return nil, nil, err
		}
	}
	c.rdlKnown.Store(false)
	c.c.SetDeadline(time.Time{})
	c.setState(h1Active)
	c.s.conns.remove(c) // the handler's now: not drained as HTTP
	var rd io.Reader = c.c
	if c.rd < c.wr {
		rd = io.MultiReader(bytes.NewReader(slices.Clone(c.buf[c.rd:c.wr])), c.c)
	}
	br := bufio.NewReaderSize(rd, 4096)
	if n := c.wr - c.rd; n > 0 {
		br.Peek(min(n, 4096)) // into the reader's buffer, where the handler looks first
	}
	c.rd, c.wr = 0, 0
	return c.c, bufio.NewReadWriter(br, bufio.NewWriterSize(c.c, 4096)), nil
}

// statusText is the reason phrase for code, as net/http writes it.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "status code " + strconv.Itoa(code)
}

// dateCache formats the Date header once a second.
type dateCache struct {
	v atomic.Pointer[dateLine]
}

type dateLine struct {
	sec  int64
	line []byte
}

func (d *dateCache) append(b []byte) []byte {
	now := time.Now()
	l := d.v.Load()
	if l == nil || l.sec != now.Unix() {
		l = &dateLine{sec: now.Unix(), line: []byte("Date: " + now.UTC().Format(http.TimeFormat) + "\r\n")}
		d.v.Store(l)
	}
	return append(b, l.line...)
}
