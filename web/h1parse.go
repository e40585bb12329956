package web

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// The request head parser of the plain HTTP/1.1 server (h1conn.go). It is
// stricter than net/http where two parsers could frame a request
// differently (RFC 9112 6.1, 6.3 and 5.2, as h11 and nginx): Content-Length
// with Transfer-Encoding, Transfer-Encoding on HTTP/1.0, and folded header
// lines are refused, and the connection closed.

// headError is a request refused before the app sees it: the status, and
// why, for the log and the client.
type headError struct {
	code int
	why  string
	// framing: a request a proxy in front of us could have framed
	// differently (request smuggling), logged as such.
	framing bool
}

func (e *headError) Error() string { return e.why }

func badHead(why string) *headError { return &headError{code: http.StatusBadRequest, why: why} }

func badFraming(why string) *headError {
	return &headError{code: http.StatusBadRequest, why: why, framing: true}
}

// parsedHead is a request head: the request for the handler and what the
// connection needs to frame its body and the response.
type parsedHead struct {
	req        http.Request
	chunked    bool
	length     int64 // the body's length; -1 when chunked
	expect     bool  // Expect: 100-continue on HTTP/1.1 with a body
	keepHTTP10 bool  // HTTP/1.0 with Connection: keep-alive
}

// parseHead parses one request head (request line, header lines, without
// the empty line that ends it) into p.
func parseHead(head string, p *parsedHead) *headError {
	line, rest, _ := strings.Cut(head, "\n")
	line = strings.TrimSuffix(line, "\r")
	method, after, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(after, " ")
	if !ok1 || !ok2 || method == "" || target == "" {
		return badHead("malformed request line")
	}
	if !validToken(method) {
		return badHead("invalid method")
	}
	major, minor, ok := parseVersion(proto)
	if !ok {
		return badHead("malformed HTTP version")
	}
	if major != 1 {
		return &headError{code: http.StatusHTTPVersionNotSupported, why: "unsupported protocol version"}
	}
	// Count the lines first: one backing array holds every value.
	n := strings.Count(rest, "\n") + 1
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	var host string
	hosts, cls, tes := 0, 0, 0
	var clValue, teValue string
	fold := false
	for rest != "" {
		var l string
		l, rest, _ = strings.Cut(rest, "\n")
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			fold = true
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || !validToken(name) {
			return badHead("malformed header line")
		}
		value = strings.Trim(value, " \t")
		if !validFieldValue(value) {
			return badHead("invalid header value")
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			host = value
			continue // net/http's place for it is r.Host
		case "Content-Length":
			cls++
			if cls > 1 && value != clValue {
				return badHead("differing Content-Length headers")
			}
			clValue = value
			if cls > 1 {
				continue
			}
		case "Transfer-Encoding":
			tes++
			teValue = value
			continue // as net/http: r.TransferEncoding
		}
		vals = append(vals, value)
		if old := h[key]; old != nil {
			h[key] = append(old, value)
		} else {
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if fold {
		return badFraming("a folded header line (obs-fold)")
	}
	if tes > 0 {
		if tes > 1 || !asciiEqualFold(teValue, "chunked") {
			return &headError{code: http.StatusNotImplemented, why: "unsupported transfer encoding"}
		}
		switch {
		case cls > 0:
			return badFraming("both Content-Length and Transfer-Encoding")
		case minor == 0:
			return badFraming("Transfer-Encoding in an HTTP/1.0 request")
		}
	}
	if hosts > 1 {
		return badHead("too many Host headers")
	}
	if hosts == 0 && minor >= 1 {
		return badHead("missing required Host header")
	}
	if !validHost(host) {
		return badHead("malformed Host header")
	}
	p.req = http.Request{Method: method, Proto: proto, ProtoMajor: major, ProtoMinor: minor,
		Header: h, Host: host, RequestURI: target}
	r := &p.req
	var err error
	if method == http.MethodConnect && !strings.HasPrefix(target, "/") {
		r.URL, err = url.ParseRequestURI("http://" + target)
		if err == nil {
			r.URL.Scheme = ""
		}
	} else if u, ok := plainTarget(target); ok {
		r.URL = u
	} else {
		r.URL, err = url.ParseRequestURI(target)
	}
	if err != nil {
		return badHead("malformed request target")
	}
	if r.URL.Host != "" {
		r.Host = r.URL.Host
	}
	p.chunked, p.length = false, 0
	switch {
	case tes > 0:
		p.chunked, p.length = true, -1
		r.TransferEncoding = []string{"chunked"}
		r.ContentLength = -1
	case cls > 0:
		n, ok := parseLength(clValue)
		if !ok {
			return badHead("bad Content-Length")
		}
		p.length, r.ContentLength = n, n
	}
	if p.chunked {
		// As net/http: a trailer may not carry the message's framing.
		for _, v := range h["Trailer"] {
			for _, t := range strings.Split(v, ",") {
				switch textproto.CanonicalMIMEHeaderKey(strings.Trim(t, " \t")) {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return badHead("bad trailer key")
				}
			}
		}
		// As net/http: the declaration goes (trailers reach no app).
		delete(h, "Trailer")
	}
	conn := h["Connection"]
	r.Close = hasToken(conn, "close")
	p.keepHTTP10 = false
	if minor == 0 && !r.Close {
		p.keepHTTP10 = hasToken(conn, "keep-alive")
		r.Close = !p.keepHTTP10
	}
	p.expect = false
	if ex := h["Expect"]; ex != nil && minor >= 1 {
		if len(ex) != 1 || !asciiEqualFold(ex[0], "100-continue") {
			return &headError{code: http.StatusExpectationFailed, why: "unsupported Expect"}
		}
		p.expect = p.length != 0
	}
	return nil
}

// parseVersion parses HTTP/x.y.
func parseVersion(v string) (major, minor int, ok bool) {
	switch v {
	case "HTTP/1.1":
		return 1, 1, true
	case "HTTP/1.0":
		return 1, 0, true
	}
	if len(v) != 8 || !strings.HasPrefix(v, "HTTP/") || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

// parseLength parses a Content-Length: digits only (no sign, no list).
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func validToken(s string) bool { return s != "" && allIn(s, &isTokenByte) }

// allIn reports whether every byte of s is in set.
func allIn(s string, set *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}

// isTokenByte: RFC 9110 5.6.2 tchar.
var isTokenByte = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd is the set of ASCII letters and digits and the bytes of extra.
func alnumAnd(extra string) (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return t
}

// validFieldValue: no control bytes but tab (RFC 9110 5.5); bytes above
// 0x7f (obs-text) are allowed.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost: the bytes a Host header may hold (a host, a port, an IPv6
// literal, percent-encoding), the set net/http allows.
func validHost(h string) bool { return allIn(h, &isHostByte) }

var isHostByte = alnumAnd("!$%&'()*+,-.:;=[]_~")

// asciiEqualFold compares case-insensitively in ASCII only: Unicode
// folding would take "chun\u212Aed" (Kelvin sign) for "chunked", which a
// proxy in front of us does not.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// hasToken reports whether a comma-separated header has token
// (case-insensitively), as in Connection: keep-alive, Upgrade.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if asciiEqualFold(strings.Trim(t, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// headEnd finds the end of a request head in b: the index just past the
// empty line that ends it, or -1.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		case i >= len(b) || (i+1 == len(b) && b[i] == '\r'):
			return -1
		}
	}
}

// plainTarget parses the common request target, a path of characters that
// need no escaping and an optional query, to the URL url.ParseRequestURI
// makes of it; anything else (escapes, an empty query, a fragment, an
// absolute form) is left to url.ParseRequestURI.
func plainTarget(target string) (*url.URL, bool) {
	path, query, hasQuery := strings.Cut(target, "?")
	if path == "" || path[0] != '/' || hasQuery && query == "" {
		return nil, false
	}
	for i := 0; i < len(path); i++ {
		if !isPlainPathByte[path[i]] {
			return nil, false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c == 0x7f || c == '#' {
			return nil, false
		}
	}
	return &url.URL{Path: path, RawQuery: query}, true
}

// isPlainPathByte: the bytes of a path that url.URL keeps as they are,
// escaped or not (RFC 3986 unreserved, and the sub-delimiters and
// separators that net/url does not escape in a path).
var isPlainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~$&+,/:;=@" {
		t[c] = true
	}
	return
}()
