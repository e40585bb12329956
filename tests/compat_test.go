package tests

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// Flask under hornbeam -k wsgi and gunicorn gthread, mounted at /mnt
// (--root-path; SCRIPT_NAME for gunicorn).
func TestCompatFlask(t *testing.T) {
	needPy(t, "flask", "gunicorn")
	dir, data := compatData(t)
	env := []string{"COMPAT_DIR=" + dir}
	hb, peer := startBoth(t, func() *compatServer {
		return startHornbeam(t, "", env, "flaskcompat:app", "-k", "wsgi", "--pythonpath", compatTestdata(), "--root-path", "/mnt")
	}, func() (*compatServer, error) {
		return startPeer(t, "gunicorn", compatTestdata(), append(env, "SCRIPT_NAME=/mnt"),
			"-m", "gunicorn", "-k", "gthread", "--threads", "4", "-b", "127.0.0.1:PORT", "flaskcompat:app")
	})
	app := compatApp{volatileCookies: []string{"session"}}
	form := "Content-Type: application/x-www-form-urlencoded"
	js := "Content-Type: application/json"
	upload := multipartBody(map[string]string{"title": "Q3 ✓ report"},
		map[string][2]any{"doc": {"report.bin", data}, "note": {"notes é.txt", []byte("hello\r\nworld\n")}})
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	runCompat(t, app, hb, peer, []compatRow{
		// Session login and logout, with the redirects url_for builds under /mnt.
		{name: "login_page", method: "GET", target: "/mnt/login"},
		{name: "me_anonymous", method: "GET", target: "/mnt/me"},
		{name: "login_bad", method: "POST", target: "/mnt/login", hdr: []string{form}, body: []byte("user=ann&password=no")},
		{name: "login", method: "POST", target: "/mnt/login", hdr: []string{form}, body: []byte("user=ann+%C3%A9&password=pw")},
		{name: "me", method: "GET", target: "/mnt/me"},
		{name: "logout", method: "POST", target: "/mnt/logout", body: []byte{}},
		{name: "me_after_logout", method: "GET", target: "/mnt/me"},
		// Forms and uploads.
		{name: "form", method: "POST", target: "/mnt/form?x=1&x=2", hdr: []string{form}, body: []byte("a=1&a=2&name=J%C3%BCrgen+X&empty=&plus=%2B")},
		{name: "form_charset", method: "POST", target: "/mnt/form", hdr: []string{form + "; charset=utf-8"}, body: []byte("k=%E2%9C%93")},
		{name: "multipart", method: "POST", target: "/mnt/upload", hdr: []string{multipartCT}, body: upload},
		{name: "multipart_chunked", method: "POST", target: "/mnt/upload", hdr: []string{multipartCT}, body: upload, chunks: 16000},
		{name: "raw_length", method: "POST", target: "/mnt/raw", hdr: []string{"Content-Type: application/octet-stream"}, body: big},
		{name: "raw_chunked", method: "POST", target: "/mnt/raw", hdr: []string{"Content-Type: application/octet-stream"}, body: big, chunks: 7000},
		{name: "raw_chunked_empty", method: "PUT", target: "/mnt/raw", body: []byte{}, chunks: 1},
		{name: "raw_expect_continue", method: "POST", target: "/mnt/raw", hdr: []string{"Expect: 100-continue"}, body: big[:5000]},
		// A JSON API and its error pages.
		{name: "api_get", method: "GET", target: "/mnt/api/items/5"},
		{name: "api_404", method: "GET", target: "/mnt/api/items/500"},
		{name: "api_404_route", method: "GET", target: "/mnt/api/nothing"},
		{name: "api_405", method: "PUT", target: "/mnt/api/items/5", hdr: []string{js}, body: []byte(`{}`)},
		{name: "api_options", method: "OPTIONS", target: "/mnt/api/items/5"},
		{name: "api_create", method: "POST", target: "/mnt/api/items", hdr: []string{js}, body: []byte(`{"name":"ünï","n":[1,2]}`)},
		{name: "api_400", method: "POST", target: "/mnt/api/items", hdr: []string{js}, body: []byte(`{"name":`)},
		{name: "api_422", method: "POST", target: "/mnt/api/items", hdr: []string{js}, body: []byte(`{"nom":1}`)},
		{name: "api_not_json", method: "POST", target: "/mnt/api/items", hdr: []string{"Content-Type: text/plain"}, body: []byte(`{"name":"x"}`)},
		{name: "api_delete_204", method: "DELETE", target: "/mnt/api/items/5"},
		{name: "error_500", method: "GET", target: "/mnt/boom"},
		// send_file: ETag and 304, ranges, HEAD.
		{name: "file", method: "GET", target: "/mnt/file", grab: map[string]string{"etag": `Etag: (\S+)`, "lastmod": `Last-Modified: ([^\r\n]+)`}},
		{name: "file_304", method: "GET", target: "/mnt/file", hdr: []string{"If-None-Match: {etag}"}},
		{name: "file_304_since", method: "GET", target: "/mnt/file", hdr: []string{"If-Modified-Since: {lastmod}"}},
		{name: "file_etag_other", method: "GET", target: "/mnt/file", hdr: []string{`If-None-Match: "other"`}},
		{name: "file_range", method: "GET", target: "/mnt/file", hdr: []string{"Range: bytes=0-99"}},
		{name: "file_range_suffix", method: "GET", target: "/mnt/file", hdr: []string{"Range: bytes=-100"}},
		{name: "file_range_open", method: "GET", target: "/mnt/file", hdr: []string{"Range: bytes=307000-"}},
		{name: "file_range_multi", method: "GET", target: "/mnt/file", hdr: []string{"Range: bytes=0-9,20-29"}},
		{name: "file_range_416", method: "GET", target: "/mnt/file", hdr: []string{"Range: bytes=999999-"}},
		{name: "file_if_range", method: "GET", target: "/mnt/file", hdr: []string{"Range: bytes=10-19", "If-Range: {etag}"}},
		{name: "file_if_range_stale", method: "GET", target: "/mnt/file", hdr: []string{"Range: bytes=10-19", `If-Range: "stale"`}},
		{name: "file_head", method: "HEAD", target: "/mnt/file"},
		{name: "file_head_range", method: "HEAD", target: "/mnt/file", hdr: []string{"Range: bytes=0-99"}},
		{name: "download", method: "GET", target: "/mnt/download"},
		// Streaming from a generator.
		{name: "stream", method: "GET", target: "/mnt/stream?n=5&tag=%C3%A9"},
		{name: "stream_empty", method: "GET", target: "/mnt/stream?n=0", ignore: []string{"framing:", "header content-length:"},
			why:  "hornbeam knows the generator ended before any byte and sends Content-Length: 0; gunicorn sends an empty chunked body",
			want: []string{"framing: length\nheader content-length: 0\n"}},
		{name: "stream_http10", method: "GET", target: "/mnt/stream?n=3", proto: "HTTP/1.0", ignore: http10Close, why: http10Why,
			want: []string{"framing: none"}},
		{name: "echo_http10_no_host", method: "GET", target: "/mnt/echo/x", proto: "HTTP/1.0", noHost: true, ignore: http10Close, why: http10Why},
		{name: "stream_head", method: "HEAD", target: "/mnt/stream"},
		// Paths and query strings.
		{name: "path_unicode", method: "GET", target: "/mnt/echo/caf%C3%A9%20x/%E2%9C%93?q=%C3%A4+b&r=1&r=2&bad=%ZZ&e"},
		{name: "path_raw_utf8", method: "GET", target: "/mnt/echo/café?q=ü", peerWrong: true,
			why:  "gunicorn 20.1 encodes a raw UTF-8 path twice (PATH_INFO caf\u00c3\u00a9); PEP 3333 wants the bytes as latin-1, once",
			want: []string{`"path":"/echo/caf\u00e9"`}},
		{name: "path_encoded_slash", method: "GET", target: "/mnt/echo/a%2Fb/c"},
		{name: "path_dot_segments", method: "GET", target: "/mnt/echo/a/../b/./c"},
		{name: "path_double_slash", method: "GET", target: "/mnt/echo//x"},
		{name: "headers", method: "GET", target: "/mnt/headers", hdr: []string{"X-Multi: a", "X-Multi: b", "X-Empty:", "Accept-Language: fr"}},
		{name: "header_trailing_space", method: "GET", target: "/mnt/headers", hdr: []string{"X-Spaces:   padded  "}, peerWrong: true,
			why:  "gunicorn 20.1 keeps a field value's trailing spaces; RFC 9110 5.5 excludes them",
			want: []string{`["X-Spaces","padded"]`}},
		// Cookies the app sets and deletes.
		{name: "cookie_set", method: "GET", target: "/mnt/cookie/set"},
		{name: "cookie_get", method: "GET", target: "/mnt/cookie/get"},
		{name: "cookie_del", method: "GET", target: "/mnt/cookie/del"},
		{name: "cookie_get_after", method: "GET", target: "/mnt/cookie/get"},
	})
}

// HTTP/1.0 without keep-alive closes after the answer whether or not the
// server says so (RFC 9112 9.3); gunicorn says so, hornbeam (net/http) not.
var (
	http10Close = []string{"header connection: close"}
	http10Why   = "an HTTP/1.0 answer without keep-alive closes anyway; gunicorn adds Connection: close"
)

var _ = regexp.MustCompile
var _ = strings.Contains
