package web

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestDecodeResponse(t *testing.T) {
	for _, n := range []int{0, 5, 23, 24, 255, 256, 65536, 70000} {
		want := appResponse{Status: "200 OK", Headers: [][2]string{{"A", "b"}}, Body: bytes.Repeat([]byte("x"), n), Streamed: n%2 == 0}
		raw, _ := cbor.Marshal(want)
		got, err := decodeResponse(raw)
		if err != nil || got.Status != "200 OK" || len(got.Headers) != 1 || !bytes.Equal(got.Body, want.Body) || got.Streamed != want.Streamed {
			t.Fatalf("body of %d: %+v, %v", n, got.Headers, err)
		}
	}
	// The shapes Python sends take the hand-written path and agree with the
	// generic decoder.
	for _, want := range []appResponse{
		{Status: uint64(200), Headers: [][2]string{{"content-type", "text/plain"}, {"x", strings.Repeat("v", 300)}}, Body: []byte("hi")},
		{Status: "404 Not Found", Headers: [][2]string{}, Body: []byte{}, Streamed: true},
	} {
		raw, _ := cbor.Marshal(want)
		got, ok := decodeResponseFast(raw)
		var slow appResponse
		if err := cbor.Unmarshal(raw, &slow); err != nil || !ok || !reflect.DeepEqual(got, slow) {
			t.Fatalf("fast %+v (%v), generic %+v (%v)", got, ok, slow, err)
		}
	}
	if _, err := decodeResponse([]byte{0x84, 0x01}); err == nil {
		t.Fatal("a truncated response decoded")
	}
}
