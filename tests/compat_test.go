package tests

import (
	"bytes"
	"os/exec"
	"regexp"
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
		{name: "raw_chunked", method: "POST", target: "/mnt/raw", hdr: []string{"Content-Type: application/octet-stream"}, body: big, chunks: 7000,
			want: []string{`"chunked":"chunked"`}},
		{name: "raw_chunked_empty", method: "PUT", target: "/mnt/raw", body: []byte{}, chunks: 1},
		{name: "raw_expect_continue", method: "POST", target: "/mnt/raw", expect100: true, body: big[:5000]},
		{name: "upload_expect_continue", method: "POST", target: "/mnt/upload", hdr: []string{multipartCT}, expect100: true, body: upload},
		// Browsers keep the connection: the next request follows on it.
		{name: "keepalive_after_unread_body", method: "PUT", target: "/mnt/api/items/5", body: big[:100000],
			then: []compatRow{{method: "GET", target: "/mnt/api/items/5"}, {method: "GET", target: "/mnt/me"}}},
		{name: "keepalive_after_stream", method: "GET", target: "/mnt/stream?n=3",
			then: []compatRow{{method: "HEAD", target: "/mnt/file"}, {method: "GET", target: "/mnt/api/items/6"}}},
		{name: "pipelined", method: "POST", target: "/mnt/raw", body: big[:20000], pipeline: true,
			then:     []compatRow{{method: "GET", target: "/mnt/stream?n=2"}, {method: "HEAD", target: "/mnt/file"}, {method: "GET", target: "/mnt/api/items/8"}},
			skipPeer: true, why: gthreadPipelineWhy,
			want: []string{`"n":20000`, "body: line 0 \nline 1 \n", "header content-length: 307200", `body: {"id":8,"name":"item 8"}`}},
		{name: "keepalive_after_chunked_upload", method: "POST", target: "/mnt/raw", body: big[:30000], chunks: 4000,
			then: []compatRow{{method: "POST", target: "/mnt/raw", body: []byte("second")}}},
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
		{name: "stream_large", method: "GET", target: "/mnt/stream?n=60000&tag=x"},
		{name: "stream_fails_midway", method: "GET", target: "/mnt/stream-fail", want: []string{"body cut: unexpected EOF"}},
		// Paths and query strings.
		{name: "path_unicode", method: "GET", target: "/mnt/echo/caf%C3%A9%20x/%E2%9C%93?q=%C3%A4+b&r=1&r=2&bad=%ZZ&e",
			want: []string{`"server":"127.0.0.1"`, `"port":"<port>"`}},
		{name: "path_raw_utf8", method: "GET", target: "/mnt/echo/café?q=ü", skipPeer: true,
			why:  "gunicorn 20.1 encodes a raw UTF-8 path twice (PATH_INFO caf\u00c3\u00a9); PEP 3333 wants the bytes as latin-1, once",
			want: []string{`"path":"/echo/caf\u00e9"`}},
		{name: "path_encoded_slash", method: "GET", target: "/mnt/echo/a%2Fb/c"},
		{name: "path_dot_segments", method: "GET", target: "/mnt/echo/a/../b/./c"},
		{name: "path_double_slash", method: "GET", target: "/mnt/echo//x"},
		{name: "behind_proxy_proto", method: "GET", target: "/mnt/echo/p", hdr: []string{"X-Forwarded-Proto: https"}},
		{name: "behind_proxy_for", method: "GET", target: "/mnt/echo/p", hdr: []string{"X-Forwarded-For: 203.0.113.9, 10.0.0.2", "X-Forwarded-Proto: https"}, skipPeer: true, why: forwardedForWhy,
			want: []string{`"remote_addr":"10.0.0.2"`, `"scheme":"https"`}},
		{name: "prefix_missing", method: "GET", target: "/echo/np", skipPeer: true,
			why:  "gunicorn fails (500) on a path without its SCRIPT_NAME; hornbeam serves it as mounted there, as a proxy that strips the prefix wants",
			want: []string{"status 200", `"script_root":"/mnt"`, `"url":"http://compat.test/mnt/echo/np"`}},
		{name: "host_with_port", method: "GET", target: "/mnt/echo/h", noHost: true, hdr: []string{"Host: compat.test:8080"}},
		{name: "absolute_form_target", method: "GET", target: "http://compat.test/mnt/echo/abs?q=1"},
		{name: "unknown_method", method: "PROPFIND", target: "/mnt/api/items/5"},
		{name: "options_asterisk", method: "OPTIONS", target: "*", skipPeer: true,
			why:  "gunicorn hands OPTIONS * to Flask, which fails (500); hornbeam answers it itself (RFC 9110 9.3.7), as net/http does",
			want: []string{"status 200\nframing: length\nheader content-length: 0"}},
		{name: "http10_keepalive", method: "GET", target: "/mnt/api/items/3", proto: "HTTP/1.0", hdr: []string{"Connection: keep-alive"},
			then: []compatRow{{method: "GET", target: "/mnt/api/items/4", proto: "HTTP/1.0"}}, skipPeer: true, why: http10KeepAliveWhy,
			want: []string{"header connection: keep-alive", `body: {"id":4,"name":"item 4"}`}},
		{name: "headers", method: "GET", target: "/mnt/headers", hdr: []string{"X-Multi: a", "X-Multi: b", "X-Empty:", "Accept-Language: fr"},
			want: []string{`["Host","compat.test"]`}},
		{name: "header_trailing_space", method: "GET", target: "/mnt/headers", hdr: []string{"X-Spaces:   padded  "}, skipPeer: true,
			why:  "gunicorn 20.1 keeps a field value's trailing spaces; RFC 9110 5.5 excludes them",
			want: []string{`["X-Spaces","padded"]`}},
		// Cookies the app sets and deletes.
		{name: "latin1_header", method: "GET", target: "/mnt/latin1-header"},
		{name: "non_latin1_header", method: "GET", target: "/mnt/utf8-header", skipPeer: true,
			why:  "a header value beyond latin-1 (PEP 3333 forbids it): gunicorn fails to encode it and drops the connection, hornbeam sends it as UTF-8",
			want: []string{"status 200", `header x-mark: \xe2\x9c\x93`}},
		{name: "non_ascii_request_headers", method: "GET", target: "/mnt/headers", hdr: []string{"X-Latin: caf\xe9", "X-Utf8: café ✓"}},
		{name: "cookie_set", method: "GET", target: "/mnt/cookie/set"},
		{name: "cookie_get", method: "GET", target: "/mnt/cookie/get"},
		{name: "cookie_del", method: "GET", target: "/mnt/cookie/del"},
		{name: "cookie_get_after", method: "GET", target: "/mnt/cookie/get"},
	})
}

// An HTTP/1.0 client that asks for keep-alive (ApacheBench does): hornbeam
// (net/http) keeps the connection and says so, gunicorn and uvicorn close it
// after the first answer. Both are allowed (RFC 9112 9.3).
const http10KeepAliveWhy = "HTTP/1.0 keep-alive: hornbeam keeps the connection, gunicorn and uvicorn close it after one answer"

// HTTP/1.0 without keep-alive closes after the answer whether or not the
// server says so (RFC 9112 9.3); gunicorn says so, hornbeam (net/http) not.
var (
	http10Close = []string{"header connection: close"}
	http10Why   = "an HTTP/1.0 answer without keep-alive closes anyway; gunicorn adds Connection: close"
)

// A streamed response that ends before its first byte: hornbeam knows its
// length (0), the peers send an empty chunked body. Both are whole answers.
var (
	emptyStream    = []string{"framing:", "header content-length:"}
	emptyStreamWhy = "hornbeam sends Content-Length: 0 for a stream that ended before any byte; the peer an empty chunked body"
)

// A websocket the app closes before accepting it is refused with 403 by
// both; hornbeam says why in a short text body, uvicorn sends none.
var (
	wsRefusedBody = []string{"header content-length:", "header content-type:", "body:"}
	wsRefusedWhy  = "the 403 of a refused websocket: hornbeam's has a text body, uvicorn's is empty"
)

// gunicorn's gthread worker reads one request per read: the requests
// pipelined behind it are lost and the client waits for answers that never
// come (RFC 9112 9.3.2 wants them answered in order).
const gthreadPipelineWhy = "gunicorn gthread answers the first of pipelined requests only, then closes"

var pipelinedDj = []compatRow{{method: "GET", target: "/dj/slash/"}, {method: "GET", target: "/dj/go"}}

// With --proxy-headers (on, as uvicorn's), hornbeam takes a trusted proxy's
// X-Forwarded-For as REMOTE_ADDR for WSGI apps too; gunicorn leaves the
// proxy's address there (it reads X-Forwarded-Proto alone).
const forwardedForWhy = "gunicorn keeps the proxy's address as REMOTE_ADDR; hornbeam, as uvicorn, takes X-Forwarded-For from a trusted proxy"

// gunicorn 20.1 writes the app's body after the headers of a HEAD answer
// (RFC 9110 9.3.2: a server must not), as Django gives one; hornbeam sends
// the headers alone.
const gunicornHeadWhy = "gunicorn 20.1 sends the body of a HEAD answer when the app (Django) gives one"

// Starlette (and FastAPI mounted at /fa) under hornbeam -k asgi and uvicorn
// (httptools, wsproto).
func TestCompatStarlette(t *testing.T) {
	needPy(t, "starlette", "fastapi", "uvicorn", "multipart", "wsproto")
	dir, data := compatData(t)
	env := []string{"COMPAT_DIR=" + dir}
	hb, peer := startBoth(t, func() *compatServer {
		return startHornbeam(t, "", env, "starcompat:app", "-k", "asgi", "--pythonpath", compatTestdata())
	}, func() (*compatServer, error) {
		// uvicorn 0.17 predates lifespan state: Starlette's lifespan, which
		// yields state, would stop it at start.
		return startPeer(t, "uvicorn", compatTestdata(), env, "-m", "uvicorn", "starcompat:app", "--host", "127.0.0.1",
			"--port", "PORT", "--ws", "wsproto", "--log-level", "warning", "--lifespan", "off")
	})
	app := compatApp{}
	upload := multipartBody(map[string]string{"title": "Q3 ✓ report", "n": "7"},
		map[string][2]any{"doc": {"report.bin", data}, "note": {"notes é.txt", []byte("hello\r\nworld\n")}})
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	js := "Content-Type: application/json"
	runCompat(t, app, hb, peer, []compatRow{
		{name: "path_params", method: "GET", target: "/items/42?q=x%20y"},
		{name: "path_param_no_match", method: "GET", target: "/items/abc"},
		{name: "path_param_path", method: "GET", target: "/files/a/b%20c/d.txt"},
		{name: "path_unicode", method: "GET", target: "/files/caf%C3%A9/%E2%9C%93?x=%C3%A4"},
		{name: "path_raw_utf8", method: "GET", target: "/files/café", skipPeer: true,
			why:  "httptools refuses a request target with non-ASCII bytes (400); gunicorn and net/http take them as UTF-8",
			want: []string{"status 200", `body: {"path":"café"}`}},
		{name: "path_encoded_slash", method: "GET", target: "/files/a%2Fb"},
		{name: "method_405", method: "POST", target: "/items/3", body: []byte("x")},
		{name: "streaming", method: "GET", target: "/stream?n=4"},
		{name: "streaming_empty", method: "GET", target: "/stream?n=0", ignore: emptyStream, why: emptyStreamWhy,
			want: []string{"framing: length\nheader content-length: 0\n"}},
		{name: "streaming_head", method: "HEAD", target: "/stream?n=4"},
		{name: "streaming_large", method: "GET", target: "/stream?n=60000"},
		{name: "streaming_fails_midway", method: "GET", target: "/stream-fail", want: []string{"body cut: unexpected EOF"}},
		{name: "file", method: "GET", target: "/file", grab: map[string]string{"etag": `Etag: (\S+)`}},
		{name: "file_range_ignored", method: "GET", target: "/file", hdr: []string{"Range: bytes=0-99"}},
		{name: "file_if_none_match", method: "GET", target: "/file", hdr: []string{"If-None-Match: {etag}"}},
		{name: "file_head", method: "HEAD", target: "/file"},
		{name: "head_bytes", method: "HEAD", target: "/bytes"},
		{name: "background_task", method: "GET", target: "/bg?who=ann"},
		{name: "background_task_ran", method: "GET", target: "/bg/status", want: []string{`{"ran":true,"last":"ann"}`}},
		{name: "form_multipart", method: "POST", target: "/form", hdr: []string{multipartCT}, body: upload},
		{name: "form_multipart_chunked", method: "POST", target: "/form", hdr: []string{multipartCT}, body: upload, chunks: 9000},
		{name: "form_urlencoded", method: "POST", target: "/form", hdr: []string{"Content-Type: application/x-www-form-urlencoded"}, body: []byte("a=1&a=2&b=%C3%A9+x")},
		{name: "stream_in_length", method: "POST", target: "/stream-in", body: big},
		{name: "stream_in_chunked", method: "PUT", target: "/stream-in", body: big, chunks: 5000},
		{name: "stream_in_empty", method: "POST", target: "/stream-in", body: []byte{}},
		{name: "body_get_without_body", method: "GET", target: "/body"},
		{name: "body_expect_continue", method: "POST", target: "/body", expect100: true, body: []byte("ünïcode body")},
		{name: "form_expect_continue", method: "POST", target: "/form", hdr: []string{multipartCT}, expect100: true, body: upload},
		{name: "keepalive_after_unread_body", method: "POST", target: "/items/3", body: big[:100000],
			then: []compatRow{{method: "GET", target: "/items/3"}}},
		{name: "keepalive_after_stream", method: "GET", target: "/stream?n=3",
			then: []compatRow{{method: "HEAD", target: "/file"}, {method: "GET", target: "/items/1"}}},
		{name: "pipelined", method: "POST", target: "/stream-in", body: big[:20000], pipeline: true,
			then: []compatRow{{method: "GET", target: "/stream?n=2"}, {method: "HEAD", target: "/file"}, {method: "GET", target: "/items/8"}}},
		{name: "keepalive_after_stream_in", method: "PUT", target: "/stream-in", body: big[:30000], chunks: 4000,
			then: []compatRow{{method: "GET", target: "/body"}}},
		{name: "redirect_slashes", method: "GET", target: "/slash?x=1"},
		{name: "slash_page", method: "GET", target: "/slash/"},
		{name: "redirect_303", method: "GET", target: "/redirect"},
		{name: "http_exception_handler", method: "GET", target: "/teapot"},
		{name: "not_found_handler", method: "GET", target: "/nothing/here"},
		{name: "error_500", method: "GET", target: "/boom", want: []string{"body: Internal Server Error"}},
		{name: "request_info", method: "GET", target: "/info?a=1&a=2&b=%C3%A9&c", hdr: []string{"X-Multi: a", "X-Multi: b", "Accept: */*"}},
		{name: "behind_proxy", method: "GET", target: "/info", hdr: []string{"X-Forwarded-For: 203.0.113.9, 10.0.0.2", "X-Forwarded-Proto: https"}},
		{name: "host_with_port", method: "GET", target: "/info", noHost: true, hdr: []string{"Host: compat.test:8080"}},
		{name: "absolute_form_target", method: "GET", target: "http://compat.test/info?q=1"},
		{name: "http10_keepalive", method: "GET", target: "/items/3", proto: "HTTP/1.0", hdr: []string{"Connection: keep-alive"},
			then: []compatRow{{method: "GET", target: "/items/4", proto: "HTTP/1.0"}}, skipPeer: true, why: http10KeepAliveWhy,
			want: []string{"header connection: keep-alive", `body: {"id":4,`}},
		{name: "request_info_http10", method: "GET", target: "/info", proto: "HTTP/1.0", noHost: true,
			want: []string{`"http_version":"1.0"`, `"headers":[["connection","close"]]`}},
		{name: "request_info_chunked", method: "POST", target: "/info", body: []byte("abc"), chunks: 2,
			want: []string{`["transfer-encoding","chunked"]`}},
		{name: "lifespan_state", method: "GET", target: "/lifespan", skipPeer: true,
			why:  "uvicorn 0.17 predates lifespan state (ASGI 2.3's scope[\"state\"]): it runs without lifespan and answers 500",
			want: []string{"status 200", `body: {"greeting":"hello from lifespan"}`}},
		{name: "non_ascii_header", method: "GET", target: "/raw-header"},
		{name: "non_ascii_request_headers", method: "GET", target: "/info", hdr: []string{"X-Latin: caf\xe9", "X-Utf8: café ✓"}},
		{name: "cookie_set", method: "GET", target: "/cookie/set"},
		{name: "cookie_get", method: "GET", target: "/cookie/get"},
		{name: "cookie_del", method: "GET", target: "/cookie/del"},
		{name: "cookie_get_after", method: "GET", target: "/cookie/get"},
		// FastAPI, mounted.
		{name: "fastapi_item", method: "GET", target: "/fa/items/5?q=x", hdr: []string{"X-Token: t0k"}},
		{name: "fastapi_422", method: "GET", target: "/fa/items/abc"},
		{name: "fastapi_404", method: "GET", target: "/fa/items/404"},
		{name: "fastapi_create", method: "POST", target: "/fa/items", hdr: []string{js}, body: []byte(`{"name":"ü","price":1.5,"tags":["a"]}`)},
		{name: "fastapi_create_422", method: "POST", target: "/fa/items", hdr: []string{js}, body: []byte(`{"name":"x"}`)},
		{name: "fastapi_broken_json", method: "POST", target: "/fa/items", hdr: []string{js}, body: []byte(`{"name":`)},
		{name: "fastapi_sync", method: "GET", target: "/fa/sync"},
		{name: "fastapi_openapi", method: "GET", target: "/fa/openapi.json"},
		{name: "fastapi_docs", method: "GET", target: "/fa/docs"},
		// Websockets: frames both ways, then the close code and reason.
		{name: "ws_echo_close_code", target: "/ws?name=ann", ws: []wsStep{{1, []byte("hi ✓")}, {2, []byte{1, 2, 3}}, {1, []byte("close")}}},
		{name: "ws_client_close", target: "/ws", ws: []wsStep{wsRead, {1, []byte("x")}, wsRead, {8, []byte{0x03, 0xe8}}}},
		{name: "ws_subprotocol", target: "/ws", hdr: []string{"Sec-WebSocket-Protocol: chat, superchat"}, ws: []wsStep{{1, []byte("close")}}},
		{name: "ws_big_binary", target: "/ws", ws: []wsStep{{2, big[:70000]}, {1, []byte("close")}}},
		{name: "ws_app_raises", target: "/ws", ws: []wsStep{{1, []byte("raise")}}, ignore: []string{"close:", "end:"},
			why:  "uvicorn 0.17 (wsproto) drops the connection without a close frame; hornbeam closes with 1011, RFC 6455's code for a server error",
			want: []string{"close: 1011"}},
		{name: "ws_ping_pong", target: "/ws", ws: []wsStep{wsRead, {9, []byte("are you there")}, wsRead, {1, []byte("close")}}, want: []string{`pong: "are you there"`}},
		{name: "ws_fragmented", target: "/ws", ws: []wsStep{wsRead, {0x01 | wsNotFinal, []byte("frag")}, {0x00 | wsNotFinal, []byte("men")}, {0x00, []byte("ted ✓")}, {1, []byte("close")}},
			want: []string{"text: echo: fragmented ✓"}},
		{name: "ws_client_close_reason", target: "/ws", ws: []wsStep{wsRead, {8, append([]byte{0x0f, 0xa1}, "going away now"...)}}, want: []string{"close: 4001"}},
		{name: "ws_client_close_seen_by_app", method: "GET", target: "/ws/last?code=4001", want: []string{`{"seen":true,"code":4001}`}},
		{name: "ws_many_messages", target: "/ws-many?n=20000", ws: []wsStep{}},
		{name: "ws_json", target: "/ws-json", ws: []wsStep{{1, []byte(`{"k":[1,2]}`)}}},
		{name: "ws_rejected", target: "/ws-reject", ws: []wsStep{}, ignore: wsRefusedBody, why: wsRefusedWhy, want: []string{"status 403"}},
		{name: "ws_no_route", target: "/nows", ws: []wsStep{}, ignore: wsRefusedBody, why: wsRefusedWhy, want: []string{"status 403"}},
	})
}

// Views added to a `django-admin startproject` site (DEBUG off), mounted at
// /dj: under hornbeam -k wsgi and gunicorn gthread, and under hornbeam
// -k asgi and uvicorn.
func TestCompatDjango(t *testing.T) {
	needPy(t, "django", "gunicorn", "uvicorn")
	dataDir, data := compatData(t)
	site := t.TempDir()
	if out, err := exec.Command(debianPython, "-m", "django", "startproject", "site9", site).CombinedOutput(); err != nil {
		t.Fatalf("startproject: %v\n%s", err, out)
	}
	env := []string{"COMPAT_DIR=" + dataDir, "DJANGO_SETTINGS_MODULE=djcompat", "PYTHONPATH=" + compatTestdata()}
	app := compatApp{
		volatileCookies: []string{"csrftoken"},
		norm: []*regexp.Regexp{regexp.MustCompile(`name="csrfmiddlewaretoken" value="(?P<csrf>[^"]+)"`),
			regexp.MustCompile(`"HTTP_X_CSRFTOKEN", "(?P<csrf>[^"]+)"`)},
	}
	upload := func() []byte {
		return multipartBody(map[string]string{"csrfmiddlewaretoken": "{csrf}", "title": "Q3 ✓"},
			map[string][2]any{"doc": {"report.bin", data}, "note": {"notes é.txt", []byte("hello\r\nworld\n")}})
	}
	rows := []compatRow{
		{name: "upload_form", method: "GET", target: "/dj/upload/", grab: map[string]string{"csrf": `csrfmiddlewaretoken" value="([^"]+)"`}},
		{name: "upload", method: "POST", target: "/dj/upload/do", hdr: []string{multipartCT, "Referer: http://compat.test/dj/upload/"}, body: upload()},
		{name: "upload_no_csrf", method: "POST", target: "/dj/upload/do", hdr: []string{"Content-Type: application/x-www-form-urlencoded"}, body: []byte("a=1"),
			ignore: []string{"body:", "header content-length:"}, why: "Django's 403 CSRF page names no server, but its length differs with the token cookie sent",
			want: []string{"status 403"}},
		{name: "upload_chunked", method: "POST", target: "/dj/upload/do", hdr: []string{multipartCT, "Referer: http://compat.test/dj/upload/", "X-CSRFToken: {csrf}"}, body: upload(), chunks: 16000},
		{name: "prefix_stripped_by_proxy", method: "GET", target: "/meta?x=1", only: "asgi"},
		{name: "upload_expect_continue", method: "POST", target: "/dj/upload/do", hdr: []string{multipartCT, "Referer: http://compat.test/dj/upload/"}, body: upload(), expect100: true},
		{name: "keepalive_after_unread_body", method: "POST", target: "/dj/go", hdr: []string{"X-CSRFToken: {csrf}"}, body: data[:100000],
			then: []compatRow{{method: "GET", target: "/dj/slash/"}}},
		{name: "keepalive_after_stream", method: "GET", target: "/dj/stream?n=2", then: []compatRow{{method: "GET", target: "/dj/slash/"}}},
		{name: "pipelined", method: "GET", target: "/dj/stream?n=2", pipeline: true, then: pipelinedDj, only: "asgi"},
		{name: "pipelined", method: "GET", target: "/dj/stream?n=2", pipeline: true, then: pipelinedDj, only: "wsgi",
			skipPeer: true, why: gthreadPipelineWhy, want: []string{"body: row 0\nrow 1\n", "body: slash page", "header location: /dj/meta?from=go"}},
		{name: "stream", method: "GET", target: "/dj/stream?n=4"},
		{name: "stream_head", method: "HEAD", target: "/dj/stream?n=4", only: "asgi"},
		{name: "stream_head", method: "HEAD", target: "/dj/stream?n=4", only: "wsgi", skipPeer: true, why: gunicornHeadWhy, want: []string{"status 200"}},
		{name: "file_response", method: "GET", target: "/dj/file"},
		{name: "file_response_head", method: "HEAD", target: "/dj/file", only: "asgi"},
		{name: "file_response_head", method: "HEAD", target: "/dj/file", only: "wsgi", skipPeer: true, why: gunicornHeadWhy,
			want: []string{"status 200", "header content-length: 307200"}},
		{name: "meta", method: "GET", target: "/dj/meta?a=1&a=2&u=%C3%BC", hdr: []string{"X-Forwarded-Thing: 1", "Accept: text/html"}},
		{name: "behind_proxy_proto", method: "GET", target: "/dj/meta", hdr: []string{"X-Forwarded-Proto: https"}},
		{name: "behind_proxy_for", method: "GET", target: "/dj/meta", hdr: []string{"X-Forwarded-For: 203.0.113.9, 10.0.0.2", "X-Forwarded-Proto: https"}, only: "asgi"},
		{name: "behind_proxy_for", method: "GET", target: "/dj/meta", hdr: []string{"X-Forwarded-For: 203.0.113.9, 10.0.0.2", "X-Forwarded-Proto: https"}, only: "wsgi", skipPeer: true, why: forwardedForWhy,
			want: []string{`"REMOTE_ADDR": "10.0.0.2"`, `"secure": true`}},
		{name: "non_ascii_request_headers", method: "GET", target: "/dj/meta", hdr: []string{"X-Latin: caf\xe9", "X-Utf8: café ✓"}},
		{name: "host_with_port", method: "GET", target: "/dj/meta", noHost: true, hdr: []string{"Host: compat.test:8080"}},
		{name: "meta_head", method: "HEAD", target: "/dj/meta", only: "asgi"},
		{name: "meta_head", method: "HEAD", target: "/dj/meta", only: "wsgi", skipPeer: true, why: gunicornHeadWhy,
			want: []string{"status 200", "header content-length: "}},
		{name: "meta_post_form", method: "POST", target: "/dj/meta", hdr: []string{"Content-Type: text/plain; charset=utf-8"}, body: []byte("plain ✓"),
			ignore: []string{"status", "header", "body:"}, why: "no CSRF token: both refuse with 403 (compared below with the token)"},
		{name: "meta_http10", method: "GET", target: "/dj/meta", proto: "HTTP/1.0", hdr: []string{"Host: 127.0.0.1"}, noHost: true, ignore: http10Close, why: http10Why},
		{name: "api_json", method: "POST", target: "/dj/api", hdr: []string{"Content-Type: application/json", "X-CSRFToken: {csrf}"}, body: []byte(`{"k":"ü"}`)},
		{name: "api_bad_json", method: "POST", target: "/dj/api", hdr: []string{"Content-Type: application/json", "X-CSRFToken: {csrf}"}, body: []byte(`{"k":`)},
		{name: "api_chunked", method: "POST", target: "/dj/meta", hdr: []string{"Content-Type: application/json", "X-CSRFToken: {csrf}"}, body: []byte(`{"k":"chunked"}`), chunks: 4},
		{name: "api_405", method: "GET", target: "/dj/api"},
		{name: "not_found_404", method: "GET", target: "/dj/nothing"},
		{name: "error_500", method: "GET", target: "/dj/boom"},
		{name: "append_slash", method: "GET", target: "/dj/slash?x=1"},
		{name: "slash_page", method: "GET", target: "/dj/slash/"},
		{name: "redirect", method: "GET", target: "/dj/go"},
		{name: "unicode_path", method: "GET", target: "/dj/echo/caf%C3%A9/%E2%9C%93%20x"},
		{name: "no_host_http10", method: "GET", target: "/dj/meta", noHost: true, proto: "HTTP/1.0", ignore: http10Close, why: http10Why},
		{name: "disallowed_host", method: "GET", target: "/dj/meta", hdr: []string{"Host: evil.example"}, noHost: true, only: "wsgi"},
		{name: "disallowed_host", method: "GET", target: "/dj/meta", hdr: []string{"Host: evil.example"}, noHost: true, only: "asgi",
			ignore: emptyStream, why: "Django's 400 comes as one body message without Content-Length: hornbeam, holding all of it, sends its length; uvicorn chunks it",
			want: []string{"status 400", "header content-length: 143"}},
		{name: "cookie_set", method: "GET", target: "/dj/cookies?set=1"},
		{name: "cookie_sent_back", method: "GET", target: "/dj/cookies"},
		{name: "cookie_delete", method: "GET", target: "/dj/cookies?del=1"},
		{name: "cookie_after_delete", method: "GET", target: "/dj/cookies"},
	}
	for _, mode := range []string{"wsgi", "asgi"} {
		t.Run(mode, func(t *testing.T) {
			hb, peer := startBoth(t, func() *compatServer {
				return startHornbeam(t, site, env, "site9."+mode+":application", "-k", mode, "--root-path", "/dj")
			}, func() (*compatServer, error) {
				if mode == "wsgi" {
					return startPeer(t, "gunicorn", site, append(env, "SCRIPT_NAME=/dj"),
						"-m", "gunicorn", "-k", "gthread", "--threads", "4", "-b", "127.0.0.1:PORT", "site9.wsgi:application")
				}
				return startPeer(t, "uvicorn", site, env, "-m", "uvicorn", "site9.asgi:application", "--host", "127.0.0.1",
					"--port", "PORT", "--root-path", "/dj", "--lifespan", "off", "--log-level", "warning")
			})
			var mine []compatRow
			for _, r := range rows {
				if r.only == "" || r.only == mode {
					mine = append(mine, r)
				}
			}
			runCompat(t, app, hb, peer, mine)
		})
	}
}

// Starlette mounted at /r (--root-path): the URLs the app builds, and its
// routes, when a proxy strips the prefix and when it does not.
func TestCompatStarletteRootPath(t *testing.T) {
	needPy(t, "starlette", "fastapi", "uvicorn", "multipart")
	dir, _ := compatData(t)
	env := []string{"COMPAT_DIR=" + dir}
	hb, peer := startBoth(t, func() *compatServer {
		return startHornbeam(t, "", env, "starcompat:app", "-k", "asgi", "--pythonpath", compatTestdata(), "--root-path", "/r")
	}, func() (*compatServer, error) {
		return startPeer(t, "uvicorn", compatTestdata(), env, "-m", "uvicorn", "starcompat:app", "--host", "127.0.0.1",
			"--port", "PORT", "--log-level", "warning", "--lifespan", "off", "--root-path", "/r")
	})
	// uvicorn 0.17 leaves the prefix out of path; hornbeam, as the ASGI spec
	// says and uvicorn does from 0.26, puts it in (path starts with
	// root_path). Starlette before 0.33 (Debian's is 0.26) routes on path
	// alone, so under hornbeam it finds no route for a stripped request.
	const why = "ASGI path includes root_path (spec; uvicorn >= 0.26, hornbeam); uvicorn 0.17 leaves it out, which Starlette < 0.33 routes on"
	runCompat(t, compatApp{}, hb, peer, []compatRow{
		{name: "prefix_stripped_by_proxy", method: "GET", target: "/info?x=1", skipPeer: true, why: why,
			want: []string{"status 404", `"path":"/r/r/info"`}},
		{name: "prefix_kept_by_proxy", method: "GET", target: "/r/info?x=1"},
		{name: "fastapi_openapi_stripped", method: "GET", target: "/fa/openapi.json", skipPeer: true, why: why, want: []string{"status 404"}},
		{name: "websocket_stripped", target: "/ws", ws: []wsStep{{1, []byte("close")}}, skipPeer: true, why: why, want: []string{"status 403"}},
	})
}
