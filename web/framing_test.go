package web

import "testing"

func TestFramer(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name   string
		stream string
		notes  []string // "" sound, "x" refused
	}{
		{"pipelined gets", get + get + get, []string{"", "", ""}},
		{"length body then get", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /" + get, []string{"", ""}},
		{"chunked body then get", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nGET /\r\n0\r\nTrailer: 1\r\n\r\n" + get, []string{"", ""}},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n" + get, []string{"", ""}},
		{"CL and TE", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get, []string{"x"}},
		{"TE on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []string{"x"}},
		{"folded", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n" + get, []string{"x"}},
		{"sound then smuggled", get + "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n", []string{"", "x"}},
		{"empty line before a request", "\r\n" + get, []string{""}},
	} {
		for _, step := range []int{1, 3, 1 << 20} { // as net/http's reads may split it
			f := newFramer(64 << 10)
			for i := 0; i < len(tc.stream); i += step {
				f.feed([]byte(tc.stream[i:min(i+step, len(tc.stream))]))
			}
			var got []string
			for {
				n, ok := f.next()
				if !ok {
					break
				}
				if n != "" {
					n = "x"
				}
				got = append(got, n)
			}
			if len(got) != len(tc.notes) {
				t.Fatalf("%s, step %d: notes %q, want %q", tc.name, step, got, tc.notes)
			}
			for i := range got {
				if got[i] != tc.notes[i] {
					t.Fatalf("%s, step %d: notes %q, want %q", tc.name, step, got, tc.notes)
				}
			}
		}
	}
}

// A header block past the bound stops the framer rather than growing.
func TestFramerBounded(t *testing.T) {
	f := newFramer(1024)
	for range 100 {
		f.feed([]byte("X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
	}
	if !f.lost || cap(f.line) > 16<<10 {
		t.Fatalf("lost %v, line buffer %d bytes", f.lost, cap(f.line))
	}
}
