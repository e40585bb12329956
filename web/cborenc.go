package web

import (
	"encoding/binary"
	"math"
)

// A request's scope or environ goes to Python as CBOR written here by hand
// rather than through reflection over a map: it is built once per request,
// and the generic encoder spent more on it than the app did on a hello.

// cborTuple is pybridge's tag for a Python tuple (see pybridge/cbor.h).
const cborTuple = 0x48420001

// cborASGIScope is pybridge's tag for an ASGI scope sent as an array of its
// values (see pybridge/cbor_dec.c): type, http_version, method (or
// subprotocols), scheme, path, raw_path, query_string, root_path, headers,
// client, server; client and server are null when unknown.
const cborASGIScope = 0x48420101

func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

func cborUint(b []byte, n uint64) []byte     { return cborHead(b, 0, n) }
func cborBytes(b, s []byte) []byte           { return append(cborHead(b, 2, uint64(len(s))), s...) }
func cborBytesStr(b []byte, s string) []byte { return append(cborHead(b, 2, uint64(len(s))), s...) }
func cborText(b []byte, s string) []byte     { return append(cborHead(b, 3, uint64(len(s))), s...) }
func cborArray(b []byte, n int) []byte       { return cborHead(b, 4, uint64(n)) }
func cborMap(b []byte, n int) []byte         { return cborHead(b, 5, uint64(n)) }
func cborTag(b []byte, tag uint64) []byte    { return cborHead(b, 6, tag) }
func cborNull(b []byte) []byte               { return append(b, 0xf6) }

func cborBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xf5)
	}
	return append(b, 0xf4)
}

// cborLatin1 writes s, bytes as PEP 3333 wants them in native strings
// (ISO-8859-1), as a text string.
func cborLatin1(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return cborText(b, latin1(s))
		}
	}
	return cborText(b, s)
}
