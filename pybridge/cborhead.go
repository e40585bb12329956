package pybridge

// Just enough CBOR to hand strings to the C decoder; everything else is
// converted in C.

func appendHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major<<5|byte(n))
	case n <= 0xff:
		return append(b, major<<5|24, byte(n))
	case n <= 0xffff:
		return append(b, major<<5|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, major<<5|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, major<<5|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, 3, uint64(len(s))), s...)
}

func appendStringArray(b []byte, ss []string) []byte {
	b = appendHead(b, 4, uint64(len(ss)))
	for _, s := range ss {
		b = appendText(b, s)
	}
	return b
}
