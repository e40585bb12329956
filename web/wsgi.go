package web

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

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

// environ builds a WSGI environ; body is the request body read ahead, and
// more says whether the app must read further (through http_read).
func (s *Server) environ(r *http.Request, body []byte, more bool) map[string]any {
	path, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		path = r.URL.Path
	}
	script := strings.TrimSuffix(s.cfg.RootPath, "/")
	if script != "" && (path == script || strings.HasPrefix(path, script+"/")) {
		path = path[len(script):]
	}
	// As gunicorn: the address the client connected to, and the Host
	// header's only on a unix socket.
	host, port, err := "", "", error(nil)
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		host, port, err = net.SplitHostPort(la.String())
	}
	if host == "" || err != nil {
		if host, port, err = net.SplitHostPort(r.Host); err != nil {
			host, port = r.Host, "80"
			if r.TLS != nil {
				port = "443"
			}
		}
	}
	scheme := httpScheme(r)
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
	if _, sent := r.Header["Content-Length"]; sent && r.ContentLength >= 0 {
		// Only what the client sent, as gunicorn: a GET without a body has
		// no CONTENT_LENGTH rather than "0".
		env["CONTENT_LENGTH"] = strconv.FormatInt(r.ContentLength, 10)
	}
	env["RAW_URI"] = latin1(r.RequestURI) // gunicorn's: the request target as sent
	// net/http moves these two out of r.Header; apps read them as headers.
	if r.Host != "" {
		env["HTTP_HOST"] = latin1(r.Host)
	}
	if len(r.TransferEncoding) > 0 {
		env["HTTP_TRANSFER_ENCODING"] = strings.Join(r.TransferEncoding, ",")
	}
	env["hornbeam.body"], env["hornbeam.more"] = body, more
	env["wsgi.multiprocess"] = s.cfg.Multiprocess
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
