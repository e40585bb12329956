package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// appendScope appends an ASGI 3 scope for r as CBOR: an http scope, or with
// subprotocols non-nil a websocket scope. net/http keeps the order of values
// of one header name but not the order across names.
func (s *Server) appendScope(b []byte, r *http.Request, subprotocols []string) []byte {
	path, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		path = r.URL.Path
	}
	root := strings.TrimSuffix(s.cfg.RootPath, "/")
	// As uvicorn: a proxy that mounts the app at root_path strips it from the
	// request, and path gets it back; a path that still has it keeps it once.
	raw := r.URL.EscapedPath()
	if root != "" && path != root && !strings.HasPrefix(path, root+"/") {
		path, raw = root+path, root+raw
	}
	ws := subprotocols != nil
	ad := addrsOf(r)
	client, clientPort, clientOK := ad.client, ad.clientPortN, ad.clientOK
	server, serverPort, serverOK := ad.server, ad.serverPortN, ad.serverOK
	scheme, kind := httpScheme(r), "http"
	if ws {
		kind, scheme = "websocket", "ws"
		if secure(r) {
			scheme = "wss"
		}
	}
	// The values in the order of cborASGIScope; Python knows the keys.
	b = cborArray(cborTag(b, cborASGIScope), 11)
	b = cborText(cborText(b, kind), asgiHTTPVersion(r))
	if ws {
		b = cborArray(b, len(subprotocols))
		for _, p := range subprotocols {
			b = cborText(b, p)
		}
	} else {
		b = cborText(b, r.Method)
	}
	b = cborText(cborText(b, scheme), path)
	b = cborBytesStr(cborBytesStr(b, raw), r.URL.RawQuery)
	b = cborText(b, root)
	// net/http moves Host and Transfer-Encoding out of r.Header; an
	// HTTP/1.0 request may have no Host, and then gets no host header.
	te := strings.Join(r.TransferEncoding, ",")
	nh := 0
	if r.Host != "" {
		nh++
	}
	if te != "" {
		nh++
	}
	for _, vs := range r.Header {
		nh += len(vs)
	}
	// Tuples of (name, value), as uvicorn gives them.
	b = cborArray(b, nh)
	if r.Host != "" {
		b = cborBytesStr(cborBytes(cborArray(cborTag(b, cborTuple), 2), []byte("host")), r.Host)
	}
	if te != "" {
		b = cborBytesStr(cborBytes(cborArray(cborTag(b, cborTuple), 2), []byte("transfer-encoding")), te)
	}
	var lower []byte
	for k, vs := range r.Header {
		lower = append(lower[:0], k...)
		for i, c := range lower {
			if 'A' <= c && c <= 'Z' {
				lower[i] = c + 'a' - 'A'
			}
		}
		for _, v := range vs {
			b = cborBytesStr(cborBytes(cborArray(cborTag(b, cborTuple), 2), lower), v)
		}
	}
	for _, a := range [...]struct {
		ok   bool
		host string
		port uint64
	}{{clientOK, client, clientPort}, {serverOK, server, serverPort}} {
		if a.ok {
			b = cborUint(cborText(cborArray(b, 2), a.host), a.port)
		} else {
			b = cborNull(b)
		}
	}
	return b
}

// asgiHTTPVersion is the version as ASGI names it: "1.0", "1.1" or "2".
func asgiHTTPVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "1.1"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "1.0"
	case r.ProtoMajor >= 2:
		return strconv.Itoa(r.ProtoMajor)
	}
	return strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
}
