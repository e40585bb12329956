package state

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// CBOR (RFC 8949) integer heads: major type 0 (unsigned, value n) and
// major type 1 (negative, value -1-n). Only what Incr needs lives here.

const (
	cborMajorUint = 0
	cborMajorNeg  = 1
)

// decodeCBORInt parses b as exactly one CBOR integer head (major type 0 or 1,
// any valid argument width, shortest or not) with no trailing bytes. It
// returns the value as a 128-bit two's complement number (hi, lo), which
// covers the full CBOR range [-2^64, 2^64-1].
func decodeCBORInt(b []byte) (hi, lo uint64, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	major := b[0] >> 5
	if major != cborMajorUint && major != cborMajorNeg {
		return 0, 0, false
	}
	var n uint64
	switch ai := b[0] & 0x1f; {
	case ai < 24:
		if len(b) != 1 {
			return 0, 0, false
		}
		n = uint64(ai)
	case ai == 24:
		if len(b) != 2 {
			return 0, 0, false
		}
		n = uint64(b[1])
	case ai == 25:
		if len(b) != 3 {
			return 0, 0, false
		}
		n = uint64(binary.BigEndian.Uint16(b[1:]))
	case ai == 26:
		if len(b) != 5 {
			return 0, 0, false
		}
		n = uint64(binary.BigEndian.Uint32(b[1:]))
	case ai == 27:
		if len(b) != 9 {
			return 0, 0, false
		}
		n = binary.BigEndian.Uint64(b[1:])
	default: // 28..30 reserved, 31 indefinite: not valid for integers
		return 0, 0, false
	}
	if major == cborMajorUint {
		return 0, n, true
	}
	// -1-n == ^n in two's complement.
	return math.MaxUint64, ^n, true
}

// addInt128ToInt64 adds delta to the 128-bit value (hi, lo) and reports the
// result if it fits in an int64.
func addInt128ToInt64(hi, lo uint64, delta int64) (int64, bool) {
	dhi := uint64(delta >> 63) // sign extension: 0 or all ones
	rlo, carry := bits.Add64(lo, uint64(delta), 0)
	rhi := hi + dhi + carry
	if rhi != uint64(int64(rlo)>>63) {
		return 0, false
	}
	return int64(rlo), true
}

// encodeCBORInt returns v as a CBOR integer in its shortest form, in a new
// slice whose capacity equals its length.
func encodeCBORInt(v int64) []byte {
	major := byte(cborMajorUint << 5)
	u := uint64(v)
	if v < 0 {
		major = cborMajorNeg << 5
		u = ^uint64(v) // -1-v
	}
	switch {
	case u < 24:
		return []byte{major | byte(u)}
	case u <= math.MaxUint8:
		return []byte{major | 24, byte(u)}
	case u <= math.MaxUint16:
		b := make([]byte, 3)
		b[0] = major | 25
		binary.BigEndian.PutUint16(b[1:], uint16(u))
		return b
	case u <= math.MaxUint32:
		b := make([]byte, 5)
		b[0] = major | 26
		binary.BigEndian.PutUint32(b[1:], uint32(u))
		return b
	default:
		b := make([]byte, 9)
		b[0] = major | 27
		binary.BigEndian.PutUint64(b[1:], u)
		return b
	}
}
