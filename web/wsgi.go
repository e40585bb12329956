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

// appendEnviron appends a WSGI environ as CBOR; body is the request body
// read ahead, and more says whether the app must read further (through
// http_read).
func (s *Server) appendEnviron(b []byte, r *http.Request, body []byte, more bool) []byte {
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
	ad := addrsOf(r)
	host, port := ad.server, ad.serverPort
	if host == "" || !ad.serverOK {
		var err error
		if host, port, err = net.SplitHostPort(r.Host); err != nil {
			host, port = r.Host, "80"
			if r.TLS != nil {
				port = "443"
			}
		}
	}
	ra, rp, raOK := ad.client, ad.clientPort, ad.clientOK
	// Only what the client sent, as gunicorn: a GET without a body has no
	// CONTENT_LENGTH rather than "0".
	_, sentCL := r.Header["Content-Length"]
	sentCL = sentCL && r.ContentLength >= 0
	n := 12
	if raOK {
		n += 2
	}
	if sentCL {
		n++
	}
	// net/http moves these two out of r.Header; apps read them as headers.
	te := strings.Join(r.TransferEncoding, ",")
	if r.Host != "" {
		n++
	}
	if te != "" {
		n++
	}
	for k := range r.Header {
		if k != "Content-Length" {
			n++
		}
	}
	b = cborMap(b, n)
	b = cborText(cborText(b, "REQUEST_METHOD"), r.Method)
	b = cborLatin1(cborText(b, "SCRIPT_NAME"), script)
	b = cborLatin1(cborText(b, "PATH_INFO"), path)
	b = cborLatin1(cborText(b, "QUERY_STRING"), r.URL.RawQuery)
	b = cborLatin1(cborText(b, "SERVER_NAME"), host)
	b = cborLatin1(cborText(b, "SERVER_PORT"), port)
	b = cborText(cborText(b, "SERVER_PROTOCOL"), r.Proto)
	b = cborText(cborText(b, "wsgi.url_scheme"), httpScheme(r))
	if raOK {
		b = cborLatin1(cborText(b, "REMOTE_ADDR"), ra)
		b = cborLatin1(cborText(b, "REMOTE_PORT"), rp)
	}
	if sentCL {
		b = cborText(cborText(b, "CONTENT_LENGTH"), strconv.FormatInt(r.ContentLength, 10))
	}
	b = cborLatin1(cborText(b, "RAW_URI"), r.RequestURI) // gunicorn's: the request target as sent
	if r.Host != "" {
		b = cborLatin1(cborText(b, "HTTP_HOST"), r.Host)
	}
	if te != "" {
		b = cborLatin1(cborText(b, "HTTP_TRANSFER_ENCODING"), te)
	}
	b = cborBytes(cborText(b, "hornbeam.body"), body)
	b = cborBool(cborText(b, "hornbeam.more"), more)
	b = cborBool(cborText(b, "wsgi.multiprocess"), s.cfg.Multiprocess)
	var key []byte
	for k, vs := range r.Header {
		switch k {
		case "Content-Length":
			continue
		case "Content-Type":
			b = cborText(b, "CONTENT_TYPE")
		default:
			key = append(key[:0], "HTTP_"...)
			for i := 0; i < len(k); i++ {
				c := k[i]
				switch {
				case c == '-':
					c = '_'
				case 'a' <= c && c <= 'z':
					c -= 'a' - 'A'
				}
				key = append(key, c)
			}
			b = cborLatin1(b, string(key))
		}
		if len(vs) == 1 {
			b = cborLatin1(b, vs[0])
		} else {
			b = cborLatin1(b, strings.Join(vs, ","))
		}
	}
	return b
}
