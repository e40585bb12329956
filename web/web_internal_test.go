package web

import (
	"bytes"
	"errors"
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

// http_write's arguments are read in place when they have the shape Python
// sends, and otherwise as the generic decoder reads them.
func TestDecodeWrite(t *testing.T) {
	decodeWrite := func(s *Server, data []byte) (*request, []byte, error) {
		var body []byte
		req, err := s.decode("http_write", data, &body)
		return req, body, err
	}
	var s Server
	req := &request{}
	s.reqs.Store(7, req)
	big := bytes.Repeat([]byte("b"), 70000)
	// Python sends its arguments as a tuple (pybridge's tag on an array).
	enc := func(v ...any) []byte {
		raw, err := cbor.Marshal(cbor.Tag{Number: cborTuple, Content: v})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	array, _ := cbor.Marshal([]any{7, []byte("hi")})
	for _, tc := range []struct {
		name    string
		data    []byte
		want    []byte
		inPlace bool
		err     bool
	}{
		{"small", enc(7, []byte("hi")), []byte("hi"), true, false},
		{"array", array, []byte("hi"), true, false},
		{"large", enc(7, big), big, true, false},
		{"empty", enc(7, []byte{}), []byte{}, false, false},
		// [7, (_ h'6162', h'63')]: an indefinite-length byte string.
		{"indefinite", []byte{0xda, 0x48, 0x42, 0x00, 0x01, 0x82, 0x07, 0x5f, 0x42, 'a', 'b', 0x41, 'c', 0xff}, []byte("abc"), false, false},
		{"not bytes", enc(7, 5), nil, false, true},
		{"extra", enc(7, []byte("x"), 1), nil, false, true},
		{"truncated", enc(7, big)[:100], nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, body, err := decodeWrite(&s, tc.data)
			if tc.err {
				if err == nil {
					t.Fatalf("decoded %d bytes, want an error", len(body))
				}
				return
			}
			if err != nil || got != req || !bytes.Equal(body, tc.want) {
				t.Fatalf("request %p (want %p), %d bytes, %v", got, req, len(body), err)
			}
			if tc.inPlace && &body[0] != &tc.data[len(tc.data)-len(body)] {
				t.Error("the body was copied, not read in place")
			}
		})
	}
	if _, _, err := decodeWrite(&s, enc(8, []byte("x"))); !errors.Is(err, errEnded) {
		t.Fatalf("a request that has ended: %v, want errEnded", err)
	}
}
