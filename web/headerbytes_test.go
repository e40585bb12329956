package web

import (
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// A tuple as Python's encoder sends it: the tuple tag around an array.
type pyTuple []any

func (t pyTuple) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: cborTuple, Content: []any(t)})
}

func TestHeaderListWireBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any // the value of X-Name as the app gave it
		want string
	}{
		{"ascii text", "text/plain", "text/plain"},
		{"latin-1 text from WSGI", "caf\u00e9", "caf\xe9"},
		{"text not latin-1: UTF-8", "\u2713", "\xe2\x9c\x93"},
		{"bytes from ASGI, as they are", []byte("caf\xc3\xa9"), "caf\xc3\xa9"},
		{"bytes not UTF-8, as they are", []byte("caf\xe9"), "caf\xe9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, shape := range []string{"list", "tuple"} {
				pair := func(k, v any) any {
					if shape == "tuple" {
						return pyTuple{k, v}
					}
					return []any{k, v}
				}
				raw, err := cbor.Marshal([]any{pair("A", "x"), pair([]byte("X-Name"), tc.in), pair("B", []byte("y"))})
				if err != nil {
					t.Fatal(err)
				}
				var got headerList
				if err := cbor.Unmarshal(raw, &got); err != nil {
					t.Fatalf("%s: %v", shape, err)
				}
				want := headerList{{"A", "x"}, {"X-Name", tc.want}, {"B", "y"}}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: got %q, want %q", shape, got, want)
				}
			}
		})
	}
}

func TestHeaderListRefusesOtherShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
	}{
		{"not a list", map[string]string{"a": "b"}},
		{"a pair of three", []any{[]any{"a", "b", "c"}}},
		{"a number for a value", []any{[]any{"a", 1}}},
		{"a pair that is a string", []any{"ab"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := cbor.Marshal(tc.in)
			var got headerList
			if err := cbor.Unmarshal(raw, &got); err == nil {
				t.Fatalf("accepted %x as %q", raw, got)
			}
		})
	}
}
