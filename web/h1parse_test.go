package web

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// Tests of the request head parser of the plain HTTP/1.1 server
// (h1parse.go): tables of what it accepts and refuses, and a differential
// fuzz test against net/http's own parser.

// parseHeadOf cuts the head out of data as the connection does (empty lines
// before a request skipped, then up to the empty line that ends the head)
// and parses it; ok is false when data holds no whole head.
func parseHeadOf(data string) (head string, p *parsedHead, herr *headError, ok bool) {
	b := []byte(data)
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' && len(b) > 1 && b[1] == '\n') {
		b = b[1:]
	}
	e := headEnd(b)
	if e < 0 {
		return "", nil, nil, false
	}
	head = string(b[:e])
	p = &parsedHead{}
	return head, p, parseHead(head, p), true
}

func TestParseHeadAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, in       string
		method, uri    string
		host, path     string
		major, minor   int
		length         int64
		chunked        bool
		expect, close  bool
		keep10         bool
		header         http.Header // every header, exactly
		transferEncode []string
	}{
		{name: "minimal", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			method: "GET", uri: "/", host: "a", path: "/", major: 1, minor: 1, header: http.Header{}},
		{name: "bare LF", in: "GET /x?q=1 HTTP/1.1\nHost: a.example:8080\nAccept: */*\n\n",
			method: "GET", uri: "/x?q=1", host: "a.example:8080", path: "/x", major: 1, minor: 1,
			header: http.Header{"Accept": {"*/*"}}},
		{name: "browser", in: "GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nuser-agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
			"accept: text/html,application/xhtml+xml;q=0.9\r\nACCEPT-ENCODING: gzip, deflate, br\r\nCookie: a=1\r\nCookie: b=2\r\n" +
			"Sec-Fetch-Mode: navigate\r\nx-custom-thing:  padded \t\r\nX-Empty:\r\n\r\n",
			method: "GET", uri: "/index.html", host: "www.example.com", path: "/index.html", major: 1, minor: 1,
			header: http.Header{"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64)"}, "Accept": {"text/html,application/xhtml+xml;q=0.9"},
				"Accept-Encoding": {"gzip, deflate, br"}, "Cookie": {"a=1", "b=2"}, "Sec-Fetch-Mode": {"navigate"},
				"X-Custom-Thing": {"padded"}, "X-Empty": {""}}},
		{name: "POST with length", in: "POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\n",
			method: "POST", uri: "/form", host: "a", path: "/form", major: 1, minor: 1, length: 11,
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Length": {"11"}}},
		{name: "repeated equal lengths", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length:  3 \r\n\r\n",
			method: "POST", uri: "/", host: "a", path: "/", major: 1, minor: 1, length: 3,
			header: http.Header{"Content-Length": {"3"}}},
		{name: "chunked", in: "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
			method: "POST", uri: "/up", host: "a", path: "/up", major: 1, minor: 1, length: -1, chunked: true,
			header: http.Header{}, transferEncode: []string{"chunked"}},
		{name: "expect with body", in: "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n",
			method: "PUT", uri: "/f", host: "a", path: "/f", major: 1, minor: 1, length: 5, expect: true,
			header: http.Header{"Content-Length": {"5"}, "Expect": {"100-Continue"}}},
		{name: "expect without body", in: "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
			method: "GET", uri: "/", host: "a", path: "/", major: 1, minor: 1,
			header: http.Header{"Expect": {"100-continue"}}},
		{name: "expect on HTTP/1.0 ignored", in: "POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: something-else\r\n\r\n",
			method: "POST", uri: "/", path: "/", major: 1, minor: 0, length: 1, close: true,
			header: http.Header{"Content-Length": {"1"}, "Expect": {"something-else"}}},
		{name: "close", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n",
			method: "GET", uri: "/", host: "a", path: "/", major: 1, minor: 1, close: true,
			header: http.Header{"Connection": {"foo, Close"}}},
		{name: "HTTP/1.0", in: "GET / HTTP/1.0\r\n\r\n",
			method: "GET", uri: "/", path: "/", major: 1, minor: 0, close: true, header: http.Header{}},
		{name: "HTTP/1.0 keep-alive", in: "GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n",
			method: "GET", uri: "/", host: "a", path: "/", major: 1, minor: 0, keep10: true,
			header: http.Header{"Connection": {"Keep-Alive"}}},
		{name: "HTTP/1.0 keep-alive and close", in: "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
			method: "GET", uri: "/", path: "/", major: 1, minor: 0, close: true,
			header: http.Header{"Connection": {"keep-alive", "close"}}},
		{name: "HTTP/1.2", in: "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
			method: "GET", uri: "/", host: "a", path: "/", major: 1, minor: 2, header: http.Header{}},
		{name: "absolute form", in: "GET http://b.example:81/p?q HTTP/1.1\r\nHost: ignored\r\n\r\n",
			method: "GET", uri: "http://b.example:81/p?q", host: "b.example:81", path: "/p", major: 1, minor: 1, header: http.Header{}},
		{name: "CONNECT", in: "CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n",
			method: "CONNECT", uri: "db.example:5432", host: "db.example:5432", path: "", major: 1, minor: 1, header: http.Header{}},
		{name: "CONNECT path", in: "CONNECT /_goRPC_ HTTP/1.1\r\nHost: a\r\n\r\n",
			method: "CONNECT", uri: "/_goRPC_", host: "a", path: "/_goRPC_", major: 1, minor: 1, header: http.Header{}},
		{name: "OPTIONS *", in: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			method: "OPTIONS", uri: "*", host: "a", path: "*", major: 1, minor: 1, header: http.Header{}},
		{name: "websocket", in: "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n",
			method: "GET", uri: "/chat", host: "server.example.com", path: "/chat", major: 1, minor: 1,
			header: http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
				"Sec-Websocket-Version": {"13"}, "Origin": {"http://example.com"}}},
		{name: "empty Host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			method: "GET", uri: "/", path: "/", major: 1, minor: 1, header: http.Header{}},
		{name: "IPv6 Host", in: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
			method: "GET", uri: "/", host: "[::1]:8080", path: "/", major: 1, minor: 1, header: http.Header{}},
		{name: "obs-text value", in: "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\xff\r\n\r\n",
			method: "GET", uri: "/", host: "a", path: "/", major: 1, minor: 1, header: http.Header{"X-Name": {"caf\xc3\xa9\xff"}}},
		{name: "extension method", in: "PROPFIND /dav HTTP/1.1\r\nHost: a\r\nDepth: 1\r\n\r\n",
			method: "PROPFIND", uri: "/dav", host: "a", path: "/dav", major: 1, minor: 1, header: http.Header{"Depth": {"1"}}},
		{name: "long header name", in: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("x-", 50) + "y: 1\r\n\r\n",
			method: "GET", uri: "/", host: "a", path: "/", major: 1, minor: 1,
			header: http.Header{strings.Repeat("X-", 50) + "Y": {"1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, p, herr, ok := parseHeadOf(tc.in)
			if !ok {
				t.Fatal("no head found")
			}
			if herr != nil {
				t.Fatalf("refused (%d): %s", herr.code, herr.why)
			}
			r := &p.req
			if r.Method != tc.method || r.RequestURI != tc.uri || r.Host != tc.host || r.URL.Path != tc.path ||
				r.ProtoMajor != tc.major || r.ProtoMinor != tc.minor || r.ContentLength != tc.length {
				t.Errorf("got %s %q host %q path %q %d.%d length %d", r.Method, r.RequestURI, r.Host, r.URL.Path,
					r.ProtoMajor, r.ProtoMinor, r.ContentLength)
			}
			if p.length != tc.length || p.chunked != tc.chunked || p.expect != tc.expect || p.req.Close != tc.close ||
				p.keepHTTP10 != tc.keep10 || r.Close != tc.close {
				t.Errorf("framing: length %d chunked %v expect %v close %v (req %v) keep10 %v", p.length, p.chunked,
					p.expect, p.req.Close, r.Close, p.keepHTTP10)
			}
			if !reflect.DeepEqual(r.Header, tc.header) {
				t.Errorf("header %q, want %q", r.Header, tc.header)
			}
			if !reflect.DeepEqual(r.TransferEncoding, tc.transferEncode) {
				t.Errorf("TransferEncoding %q", r.TransferEncoding)
			}
		})
	}
}

// parseHead reuses one parsedHead per connection: nothing of a request
// may be left over into the next.
func TestParseHeadReuse(t *testing.T) {
	var p parsedHead
	first := "POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 4\r\nX-A: 1\r\n\r\n"
	if herr := parseHead(first, &p); herr != nil || !p.keepHTTP10 || p.length != 4 {
		t.Fatalf("first: %v %+v", herr, p)
	}
	if herr := parseHead("PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", &p); herr != nil || !p.chunked || !p.expect {
		t.Fatalf("second: %v %+v", herr, p)
	}
	if herr := parseHead("GET /c HTTP/1.1\r\nHost: h\r\n\r\n", &p); herr != nil {
		t.Fatal(herr)
	}
	r := &p.req
	if p.chunked || p.length != 0 || p.expect || p.req.Close || p.keepHTTP10 || r.ContentLength != 0 ||
		r.TransferEncoding != nil || len(r.Header) != 0 || r.Body != nil || r.RemoteAddr != "" {
		t.Fatalf("left over from before: %+v", p)
	}
}

func TestParseHeadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		code     int
	}{
		{"no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"no version", "GET /\r\nHost: a\r\n\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"long version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
		{"version letters", "GET / HTTP/x.y\r\nHost: a\r\n\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bad target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"control in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"h2c preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
		{"HTTP/3.1", "GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505},
		{"missing Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400},
		{"CONNECT without Host", "CONNECT a:443 HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
		{"two Hosts differing case", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
		{"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"Host with UTF-8", "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo : 1\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", 400},
		{"bad name", "GET / HTTP/1.1\r\nHost: a\r\nX(Foo): 1\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\x00b\r\n\r\n", 400},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\x7fb\r\n\r\n", 400},
		{"CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\rb\r\n\r\n", 400},
		{"folded line", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n b\r\n\r\n", 400},
		{"folded with tab", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n\tb\r\n\r\n", 400},
		{"first header line folded", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
		{"bad length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
		{"negative length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"signed length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400},
		{"empty length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
		{"list length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400},
		{"huge length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"differing lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"length and chunked", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"chunked and length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
		{"chunked on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
		{"empty transfer encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 501},
		{"identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501},
		{"Expect other", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\n", 417},
		{"Expect two", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n", 417},
		{"Expect list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue, x\r\n\r\n", 417},
		{"Expect empty", "GET / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n", 417},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, herr, ok := parseHeadOf(tc.in)
			if !ok {
				t.Fatal("no head found")
			}
			if herr == nil {
				t.Fatalf("accepted, want %d", tc.code)
			}
			if herr.code != tc.code {
				t.Fatalf("refused %d (%s), want %d", herr.code, herr.why, tc.code)
			}
		})
	}
}

// Inputs where parseHead was more lenient than net/http (found by reading
// and by FuzzParseHead): each is refused by net/http's server, and must be
// by ours. Two parsers reading a request differently is how requests are
// smuggled past a proxy.
func TestParseHeadNoLaxerThanNetHTTP(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		code     int
	}{
		// strings.EqualFold folds Unicode: U+212A KELVIN SIGN is "k".
		// net/http answers 501; a proxy sees an unknown coding.
		{"chunked with a Kelvin sign", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun\u212Aed\r\n\r\n", 501},
		// net/http's Host bytes (httpguts.ValidHostHeader) have no '@', '#', '^', '`', '|'.
		{"Host with @", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400},
		{"Host with #", "GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", 400},
		{"Host with |", "GET / HTTP/1.1\r\nHost: a|b\r\n\r\n", 400},
		{"Host with ^", "GET / HTTP/1.1\r\nHost: a^b\r\n\r\n", 400},
		{"Host with `", "GET / HTTP/1.1\r\nHost: a`b\r\n\r\n", 400},
		// net/http refuses a trailer that would redefine the framing
		// (RFC 9110 6.5.1); minor here, as trailers are dropped.
		{"Trailer: Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n", 400},
		{"Trailer: Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Transfer-Encoding\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, herr, _ := parseHeadOf(tc.in)
			if herr == nil || herr.code != tc.code {
				t.Fatalf("%q: got %v, want %d", tc.in, herr, tc.code)
			}
			if _, err := stdParseHead(tc.in); err == nil {
				t.Fatalf("net/http accepts %q: not a divergence", tc.in)
			}
		})
	}
	// Connection tokens are ASCII case-insensitive: U+017F LATIN SMALL LETTER
	// LONG S is not "s", U+212A not "k" (net/http: Close false, and an
	// HTTP/1.0 request without keep-alive).
	for _, in := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: clo\u017Fe\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: \u212Aeep-alive\r\n\r\n",
	} {
		_, p, herr, _ := parseHeadOf(in)
		std, err := stdParseHead(in)
		if herr != nil || err != nil {
			t.Fatalf("%q: refused: %v / net/http %v", in, herr, err)
		}
		if p.req.Close != std.Close {
			t.Errorf("%q: Close %v, net/http %v", in, p.req.Close, std.Close)
		}
	}
}

func TestH1HeadEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", -1},
		{"GET", -1},
		{"GET / HTTP/1.1\r\n", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 27},
		{"GET / HTTP/1.1\r\n\r\n", 18},
		{"GET / HTTP/1.1\n\n", 16},
		{"GET / HTTP/1.1\nHost: a\n\nGET", 24},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", 26},
		{"GET / HTTP/1.1\nHost: a\r\n\n", 25},
		{"\r\n\r\n", 4},
		{"\n\n", 2},
		{"\n", -1},
		{"\r\n", -1},
		{"a\r\r\n\r\n", 6},      // "\r\r" is a line, not the end
		{"a\n\r\r\n\n", 6},      // likewise
		{"a\n\rb\n\r\n", 7},     // a line "\rb"
		{"a\n \r\n\r\n", 7},     // a line " "
		{"a\r\nb\r\nc\r\n", -1}, // no empty line yet
	} {
		if got := headEnd([]byte(tc.in)); got != tc.want {
			t.Errorf("headEnd(%q) = %d, want %d", tc.in, got, tc.want)
		}
		if got := refHeadEnd([]byte(tc.in)); got != tc.want {
			t.Errorf("refHeadEnd(%q) = %d, want %d (the test's reference is wrong)", tc.in, got, tc.want)
		}
	}
}

// refHeadEnd is headEnd written plainly: just past the first "\n\n" or
// "\n\r\n".
func refHeadEnd(b []byte) int {
	e := -1
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		e = i + 2
	}
	if i := bytes.Index(b, []byte("\n\r\n")); i >= 0 && (e < 0 || i+3 < e) {
		e = i + 3
	}
	return e
}

func TestH1ChunkSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: an error
	}{
		{"0", 0},
		{"1", 1},
		{"a", 10},
		{"A", 10},
		{"fF", 255},
		{"00000010", 16},
		{"7fffffffffffffff"[1:], 0x0fffffffffffffff},
		{"1;name=value", 1},
		{"1;name=\"quoted; string\"", 1},
		{"1 ;ext", 1},
		{"1\t; ext", 1},
		{"1 ", 1},
		{"0;", 0},
		{"", -1},
		{";ext", -1},
		{" 1", -1},
		{"g", -1},
		{"1g", -1},
		{"-1", -1},
		{"+1", -1},
		{"0x1", -1},
		{"1 2", -1},
		{"1\r", -1},
		{"1,2", -1},
		{"1000000000000000", -1},  // 16 hex digits: past the 15 allowed
		{"ffffffffffffffff", -1},  // would overflow int64
		{"10000000000000000", -1}, // and more
	} {
		n, err := chunkSize([]byte(tc.in))
		switch {
		case tc.want < 0 && err == nil:
			t.Errorf("chunkSize(%q) = %d, want an error", tc.in, n)
		case tc.want < 0 && !errors.Is(err, errBadChunk):
			t.Errorf("chunkSize(%q): %v, not errBadChunk", tc.in, err)
		case tc.want >= 0 && (err != nil || n != tc.want):
			t.Errorf("chunkSize(%q) = %d, %v; want %d", tc.in, n, err, tc.want)
		}
	}
}

func TestH1ParseLength(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: refused
	}{
		{"0", 0}, {"1", 1}, {"0012", 12}, {"123456789012345678", 123456789012345678},
		{"", -1}, {" 1", -1}, {"1 ", -1}, {"+1", -1}, {"-1", -1}, {"1_000", -1}, {"0x10", -1}, {"1,1", -1},
		{"1234567890123456789", -1}, // 19 digits: refused (net/http takes up to 2^63-1)
	} {
		n, ok := parseLength(tc.in)
		if tc.want < 0 && ok || tc.want >= 0 && (!ok || n != tc.want) {
			t.Errorf("parseLength(%q) = %d, %v; want %d", tc.in, n, ok, tc.want)
		}
	}
}

func TestH1HasToken(t *testing.T) {
	for _, tc := range []struct {
		values []string
		token  string
		want   bool
	}{
		{[]string{"close"}, "close", true},
		{[]string{"Close"}, "close", true},
		{[]string{" close\t"}, "close", true},
		{[]string{"a, close"}, "close", true},
		{[]string{"a,close,b"}, "close", true},
		{[]string{"a", "b, CLOSE"}, "close", true},
		{[]string{"closed"}, "close", false},
		{[]string{"keep-alive close"}, "close", false},
		{[]string{""}, "close", false},
		{nil, "close", false},
		{[]string{",,"}, "close", false},
		{[]string{"Upgrade, keep-alive"}, "upgrade", true},
		{[]string{"clo\u017Fe"}, "close", false},           // ASCII case-insensitive only
		{[]string{"\u212Aeep-alive"}, "keep-alive", false}, // likewise
	} {
		if got := hasToken(tc.values, tc.token); got != tc.want {
			t.Errorf("hasToken(%q, %q) = %v, want %v", tc.values, tc.token, got, tc.want)
		}
	}
}

// stdParseHead is net/http's server reading head: http.ReadRequest, then
// the checks its server makes before a handler runs (conn.readRequest).
// Host is in r.Host only, as ReadRequest leaves it.
func stdParseHead(head string) (*http.Request, error) {
	req, err := http.ReadRequest(bufio.NewReaderSize(strings.NewReader(head), 1<<16))
	if err != nil {
		return nil, err
	}
	// ReadRequest deletes Host from Header, the server looks at it first:
	// the same reader, once more, for the Host lines.
	tp := textproto.NewReader(bufio.NewReaderSize(strings.NewReader(head), 1<<16))
	tp.ReadLine()
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	hosts, haveHost := mh["Host"]
	if !(req.ProtoMajor == 1 || req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*") {
		return nil, errors.New("unsupported protocol version")
	}
	isH2Upgrade := req.Method == "PRI" && len(req.Header) == 0 && req.URL.Path == "*" && req.Proto == "HTTP/2.0"
	if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && !isH2Upgrade && req.Method != "CONNECT" {
		return nil, errors.New("missing required Host header")
	}
	if len(hosts) == 1 && !stdValidHost(hosts[0]) {
		return nil, errors.New("malformed Host header")
	}
	for k, vv := range req.Header {
		if !validToken(k) {
			return nil, errors.New("invalid header name")
		}
		for _, v := range vv {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
					return nil, errors.New("invalid header value")
				}
			}
		}
	}
	return req, nil
}

// stdValidHost is httpguts.ValidHostHeader (vendored in std, not importable).
func stdValidHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!$%&()*+,-.:;=['_]~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// stdHasToken is net/http's hasToken (header.go), with which its server
// reads Expect: 100-continue: token boundaries are space, tab and comma.
func stdHasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if sp > 0 && !strings.ContainsRune(" ,\t", rune(v[sp-1])) {
			continue
		}
		if end := sp + len(token); end != len(v) && !strings.ContainsRune(" ,\t", rune(v[end])) {
			continue
		}
		if asciiEqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

// stricterOK reports whether refusing head, which net/http's server
// accepts as std, is one of the refusals that are ours by design.
func stricterOK(head string, std *http.Request, herr *headError) bool {
	seen := map[string]string{} // canonical header name: its first value
	lines := strings.Split(strings.TrimRight(head, "\r\n"), "\n")
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(l, "\r")
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			return true // obs-fold (net/http joins the lines)
		}
		if strings.ContainsRune(l, '\r') {
			return true // a bare CR: net/http trims it off a value
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			if _, dup := seen[textproto.CanonicalMIMEHeaderKey(k)]; !dup {
				seen[textproto.CanonicalMIMEHeaderKey(k)] = strings.Trim(v, " \t")
			}
		}
	}
	_, te := seen["Transfer-Encoding"]
	_, cl := seen["Content-Length"]
	_, host := seen["Host"]
	if te && std.ProtoMinor == 0 {
		return true // Transfer-Encoding on HTTP/1.0 (net/http ignores it)
	}
	switch {
	case te && (cl || std.ProtoMinor == 0):
		return true // Transfer-Encoding with Content-Length, or on HTTP/1.0
	case herr.code == http.StatusExpectationFailed && std.Header["Expect"] != nil:
		return true // net/http: 417 unless "100-continue" is a token of the first
	case herr.code == http.StatusHTTPVersionNotSupported && std.ProtoMajor == 2:
		return true // PRI * HTTP/2.0: no h2c here
	case std.RequestURI == "":
		return true // CONNECT with no target: net/http reads "http://"
	case std.Method == http.MethodConnect && !host:
		return true // CONNECT needs a Host too
	case cl && len(seen["Content-Length"]) > 18:
		return true // 19 digits
	}
	return false
}

// FuzzParseHead compares parseHead with net/http. Whatever the bytes,
// parseHead does not panic; a head it accepts, net/http's server accepts
// too, and both read it the same: method, target, URL, Host, version,
// length and chunking, Close, Expect, and every header. A head net/http
// accepts and parseHead refuses must be one of the deliberate refusals
// (stricterOK).
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		// Realistic requests.
		"GET / HTTP/1.1\r\nHost: localhost:8000\r\n\r\n",
		"GET /search?q=go+fuzz&lang=en HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
			"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n" +
			"Accept-Encoding: gzip, deflate, br, zstd\r\nConnection: keep-alive\r\nCookie: sid=abc; theme=dark\r\n" +
			"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nPriority: u=0, i\r\n\r\n",
		"POST /api/items HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"name\":\"x\"}\n",
		"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET http://proxy.example:3128/path?x=1 HTTP/1.1\r\nHost: proxy.example:3128\r\nProxy-Connection: keep-alive\r\n\r\n",
		"CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n",
		"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /favicon.ico HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
		"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
			"Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n",
		"DELETE /items/1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x.y.z\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"\r\n\nGET /after/empty/lines HTTP/1.1\nHost: a\n\n",
		"GET /%7Euser/a%20b?c=%2F#frag HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9\r\nX-Empty:\r\nx-lower: v\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		// Malformed, or refused by design.
		"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue, foo\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: bar\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"G\xc3\xa9T / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: clo\u017fe\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun\u212aed\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n",
		"CONNECT  HTTP/1.0\nHost:\n\n", // found by the fuzzer: net/http reads "http://"
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		if e := headEnd([]byte(data)); e != refHeadEnd([]byte(data)) {
			t.Fatalf("headEnd(%q) = %d, want %d", data, e, refHeadEnd([]byte(data)))
		}
		head, p, herr, ok := parseHeadOf(data)
		if !ok {
			return
		}
		std, err := stdParseHead(head)
		if herr != nil {
			if herr.code != 400 && herr.code != 417 && herr.code != 501 && herr.code != 505 {
				t.Fatalf("%q: refused with %d", head, herr.code)
			}
			if err == nil && !stricterOK(head, std, herr) {
				t.Fatalf("%q: refused (%d %s), net/http accepts it", head, herr.code, herr.why)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: accepted, net/http refuses it: %v", head, err)
		}
		r := &p.req
		if r.Method != std.Method || r.RequestURI != std.RequestURI || r.URL.String() != std.URL.String() ||
			r.Host != std.Host || r.Proto != std.Proto || r.ProtoMajor != std.ProtoMajor || r.ProtoMinor != std.ProtoMinor {
			t.Fatalf("%q:\n got %s %q %q host %q %s\nwant %s %q %q host %q %s", head,
				r.Method, r.RequestURI, r.URL, r.Host, r.Proto, std.Method, std.RequestURI, std.URL, std.Host, std.Proto)
		}
		if r.ContentLength != std.ContentLength || !reflect.DeepEqual(r.TransferEncoding, std.TransferEncoding) ||
			p.length != std.ContentLength || p.chunked != (std.TransferEncoding != nil) {
			t.Fatalf("%q: length %d/%d chunked %v %q, net/http %d %q", head, r.ContentLength, p.length, p.chunked,
				r.TransferEncoding, std.ContentLength, std.TransferEncoding)
		}
		if r.Close != std.Close || p.req.Close != std.Close || p.keepHTTP10 != (std.ProtoMinor == 0 && !std.Close) {
			t.Fatalf("%q: Close %v (%v, keep10 %v), net/http %v", head, r.Close, p.req.Close, p.keepHTTP10, std.Close)
		}
		// Expect: net/http's server sends 100 Continue for these, and 417
		// for any other Expect (on any version).
		stdExpect := stdHasToken(std.Header.Get("Expect"), "100-continue")
		if _, ok := std.Header["Expect"]; ok && !stdExpect && std.ProtoMinor >= 1 {
			t.Fatalf("%q: Expect accepted, net/http answers 417", head)
		}
		if p.expect != (stdExpect && std.ProtoAtLeast(1, 1) && std.ContentLength != 0) {
			t.Fatalf("%q: expect %v", head, p.expect)
		}
		// Headers: ours has Host in r.Host only; net/http adds
		// Cache-Control for "Pragma: no-cache".
		want := std.Header.Clone()
		if _, ok := r.Header["Cache-Control"]; !ok {
			delete(want, "Cache-Control")
		}
		if len(r.Header) != len(want) {
			t.Fatalf("%q: header %q, net/http %q", head, r.Header, want)
		}
		for k, vs := range want {
			if !reflect.DeepEqual(r.Header[k], vs) {
				t.Fatalf("%q: header %q: %q, net/http %q", head, k, r.Header[k], vs)
			}
		}
		for k := range r.Header {
			if textproto.CanonicalMIMEHeaderKey(k) != k {
				t.Fatalf("%q: key %q not canonical", head, k)
			}
		}
	})
}

// The fast path for plain targets makes the URL url.ParseRequestURI makes,
// and leaves every other target to it.
func TestPlainTargetMatchesParseRequestURI(t *testing.T) {
	for _, target := range []string{
		"/", "/a/b", "/items/5?q=x", "/a;b=c/d:e@f$g&h+i,j~k_l.m-n", "/p?a=1&b=%20c&d=é",
		"/a%20b", "/a b", "/a?", "/a#f", "/a?x#f", "*", "http://h/p", "/ü", "/a!b", "/a'b", "/a(b)*",
		"/a?q\x7f", "/a\x01", "//double", "/a?b?c",
	} {
		want, werr := url.ParseRequestURI(target)
		got, ok := plainTarget(target)
		if !ok {
			continue // url.ParseRequestURI's
		}
		if werr != nil {
			t.Errorf("%q: plain, but url.ParseRequestURI refuses it: %v", target, werr)
			continue
		}
		if *got != *want || got.EscapedPath() != want.EscapedPath() || got.RequestURI() != want.RequestURI() {
			t.Errorf("%q: got %#v, want %#v", target, got, want)
		}
	}
	for _, target := range []string{"/", "/a/b", "/items/5?q=x", "/p?a=1&b=%20c"} {
		if _, ok := plainTarget(target); !ok {
			t.Errorf("%q: not taken as plain", target)
		}
	}
}

func FuzzPlainTarget(f *testing.F) {
	for _, s := range []string{"/", "/a?b", "/a%2fb", "/a?#", "/;@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got, ok := plainTarget(target)
		if !ok {
			return
		}
		want, err := url.ParseRequestURI(target)
		if err != nil || *got != *want {
			t.Fatalf("%q: got %#v, want %#v (%v)", target, got, want, err)
		}
	})
}
