package web

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// scope builds an ASGI 3 http scope. net/http keeps the order of values of one
// header name but not the order across names.
func (s *Server) scope(r *http.Request) map[string]any {
	path, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		path = r.URL.Path
	}
	root := strings.TrimSuffix(s.cfg.RootPath, "/")
	scheme := httpScheme(r)
	// As uvicorn: a proxy that mounts the app at root_path strips it from the
	// request, and path gets it back; a path that still has it keeps it once.
	raw := r.URL.EscapedPath()
	if root != "" && path != root && !strings.HasPrefix(path, root+"/") {
		path, raw = root+path, root+raw
	}
	headers := make([][2][]byte, 0, len(r.Header)+2)
	if r.Host != "" { // an HTTP/1.0 request may have none
		headers = append(headers, [2][]byte{[]byte("host"), []byte(r.Host)})
	}
	if len(r.TransferEncoding) > 0 { // net/http moves it out of r.Header
		headers = append(headers, [2][]byte{[]byte("transfer-encoding"), []byte(strings.Join(r.TransferEncoding, ","))})
	}
	for k, vs := range r.Header {
		lk := []byte(strings.ToLower(k))
		for _, v := range vs {
			headers = append(headers, [2][]byte{lk, []byte(v)})
		}
	}
	sc := map[string]any{
		"type":         "http",
		"asgi":         map[string]string{"version": "3.0", "spec_version": "2.3"},
		"http_version": asgiHTTPVersion(r),
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

// asgiHTTPVersion is the version as ASGI names it: "1.0", "1.1" or "2".
func asgiHTTPVersion(r *http.Request) string {
	if r.ProtoMajor >= 2 {
		return strconv.Itoa(r.ProtoMajor)
	}
	return strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
}
