package pybridge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// FuzzDecode feeds untrusted bytes to the C decoder through Python. Whatever the
// input, the process must not crash, the only error is ValueError (or its
// subclass UnicodeDecodeError), and a decoded value re-encodes stably.
func FuzzDecode(f *testing.F) {
	seeds := []any{
		nil, true, 1, -1, uint64(1 << 63), 1.5, "héllo", []byte{0, 1},
		[]any{1, "a", []any{2}}, map[string]any{"k": []any{1.5, nil}},
		map[any]any{1: "a", "b": 2},
	}
	for _, s := range seeds {
		b, _ := cbor.Marshal(s)
		f.Add(b)
	}
	// An ASGI scope as the web server sends it.
	scope, _ := cbor.Marshal(cbor.Tag{Number: 0x48420101, Content: []any{"http", "1.1", "GET", "http", "/",
		[]byte("/"), []byte("q"), "", []any{cbor.Tag{Number: 0x48420001, Content: []any{[]byte("host"), []byte("x")}}},
		[]any{"127.0.0.1", 1}, nil}})
	f.Add(scope)
	for _, raw := range [][]byte{
		{0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0},                      // bignum 2^64
		{0xc3, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0},                      // -(2^64)-1
		{0xda, 0x48, 0x42, 0x00, 0x01, 0x82, 0x01, 0x02},             // tuple (1, 2)
		{0xd8, 0x55, 0x48, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40},          // float32 LE [1, 2]
		{0xd8, 0x51, 0x44, 0x3f, 0x80, 0, 0},                         // float32 BE [1]
		{0xd8, 0x28, 0x82, 0x82, 0x01, 0x02, 0xd8, 0x40, 0x42, 1, 2}, // uint8 1x2
		{0xf9, 0x3c, 0x00},                                           // half 1.0
		{0x9f, 0x01, 0xff},                                           // indefinite array
		{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0xa2, 0x01, 0x01, 0x01, 0x02}, // duplicate key
		{0x62, 0xff, 0xfe},             // bad UTF-8
	} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, _ := cbor.Marshal([]any{data})
		_, err := py.Call(context.Background(), "bridgetest", "fuzz_roundtrip", a)
		if err == nil {
			return
		}
		var pe *pybridge.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%x: %v", data, err)
		}
		if pe.Type != "ValueError" && pe.Type != "UnicodeDecodeError" {
			t.Fatalf("%x: %s: %s\n%s", data, pe.Type, pe.Message, pe.Traceback)
		}
	})
}
