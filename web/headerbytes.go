package web

import "unicode/utf8"

// wireHeaders turns the app's header values back into the bytes it meant.
// WSGI header values are strings of latin-1 code points (PEP 3333) and the
// ASGI side decodes header bytes as latin-1, so each character below 256 is
// one byte on the wire, as gunicorn and uvicorn send it: "café" from WSGI is
// caf\xe9, and UTF-8 bytes from ASGI stay UTF-8. A character above 255 (not
// latin-1, which PEP 3333 forbids) is sent as UTF-8 rather than refused.
// Names are left alone: net/http refuses any that is not a token.
func wireHeaders(headers [][2]string) [][2]string {
	var out [][2]string
	for i, kv := range headers {
		if isASCII(kv[1]) {
			if out != nil {
				out = append(out, kv)
			}
			continue
		}
		if out == nil {
			out = append(make([][2]string, 0, len(headers)), headers[:i]...)
		}
		out = append(out, [2]string{kv[0], latin1Bytes(kv[1])})
	}
	if out == nil {
		return headers
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// latin1Bytes encodes s as latin-1, keeping characters above 255 as UTF-8.
func latin1Bytes(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 256 {
			b = append(b, byte(r))
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b)
}
