package web

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// headerList is a response's headers as they go on the wire. The app gives
// them as a list of [name, value] pairs (lists or tuples): ASGI as byte
// strings, which are the wire bytes as they are, and WSGI as text, each
// character a latin-1 code point (PEP 3333), so "café" is caf\xe9 on the
// wire as gunicorn sends it. A character above 255, which PEP 3333 forbids,
// is sent as UTF-8 rather than refused. Names are checked when the head is
// written: one that is not a token is dropped.
type headerList [][2]string

func (h *headerList) UnmarshalCBOR(b []byte) error {
	l, rest, ok := readHeaderList(b)
	if !ok || len(rest) != 0 {
		return errors.New("headers must be a list of [name, value] pairs of byte or text strings")
	}
	*h = l
	return nil
}

// readHeaderList splits a headerList off the front of b.
func readHeaderList(b []byte) (headerList, []byte, bool) {
	major, n, b, ok := cborReadHead(b)
	if !ok || major != 4 || n > uint64(len(b)) {
		return nil, nil, false
	}
	h := make(headerList, n)
	for i := range h {
		if tuple := len(b) >= 5 && b[0] == 0xda && binary.BigEndian.Uint32(b[1:5]) == cborTuple; tuple {
			b = b[5:]
		}
		if len(b) == 0 || b[0] != 0x82 {
			return nil, nil, false
		}
		b = b[1:]
		for k := range 2 {
			major, n, b, ok = cborReadHead(b)
			if !ok || major != 2 && major != 3 || n > uint64(len(b)) {
				return nil, nil, false
			}
			v := string(b[:n])
			if major == 3 && !isASCII(v) {
				v = latin1Bytes(v)
			}
			h[i][k], b = v, b[n:]
		}
	}
	return h, b, true
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
