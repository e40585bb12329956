package web

import (
	"slices"
	"testing"
)

func TestWireHeaders(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"ascii", "text/plain", "text/plain"},
		{"latin-1 from WSGI", "caf\u00e9", "caf\xe9"},
		{"UTF-8 bytes from ASGI, decoded as latin-1", "caf\u00c3\u00a9", "caf\xc3\xa9"},
		{"not latin-1: UTF-8", "\u2713", "\xe2\x9c\x93"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := [][2]string{{"A", "x"}, {"X-Name", tc.in}, {"B", "y"}}
			got := wireHeaders(in)
			want := [][2]string{{"A", "x"}, {"X-Name", tc.want}, {"B", "y"}}
			if !slices.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}
