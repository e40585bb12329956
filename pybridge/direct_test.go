package pybridge_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httputil"
	"os"
	"syscall"
	"testing"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// socketPair returns a non-blocking stream socket lent to Python and the
// file its peer reads.
func socketPair(t *testing.T) (fd int, peer *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	peer = os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() { syscall.Close(fds[0]); peer.Close() })
	return fds[0], peer
}

// lend lends fd to Python, failing t when no slot is free.
func lend(t *testing.T, fd int, chunked bool, left int64) *pybridge.DirectWriter {
	t.Helper()
	d, ok := pybridge.LendSocket(fd, chunked, left)
	if !ok {
		t.Fatal("no slot to lend the socket")
	}
	return d
}

func directWrites(t *testing.T, handle uint64, pieces ...[]byte) []uint64 {
	t.Helper()
	ps := make([]any, len(pieces))
	for i, p := range pieces {
		ps[i] = p
	}
	v, err := call(t, context.Background(), "direct_writes", handle, ps)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, r := range v.([]any) {
		got = append(got, r.(uint64))
	}
	return got
}

// Pieces written from Python through a lent socket arrive framed as chunks,
// in order; a declared length is kept; a handle is dead once Go took the
// socket back, and while Go holds it.
func TestDirectWriteChunks(t *testing.T) {
	fd, peer := socketPair(t)
	d := lend(t, fd, true, -1)
	if got := directWrites(t, d.Handle(), []byte("hello"), bytes.Repeat([]byte("x"), 300)); fmt.Sprint(got) != "[1 1]" {
		t.Fatalf("results %v, want both written", got)
	}
	l := d.Take()
	if l.Written != 305 || l.Carry != nil || l.Err != 0 {
		t.Fatalf("lent: %+v, want 305 bytes written", l)
	}
	if got := directWrites(t, d.Handle(), []byte("while Go holds it")); fmt.Sprint(got) != "[0]" {
		t.Fatalf("a write while Go holds the socket: %v, want 0", got)
	}
	d.Give(-1)
	old := d.Handle()
	d.Close()
	if got := directWrites(t, old, []byte("after close")); fmt.Sprint(got) != "[0]" {
		t.Fatalf("a write through a closed handle: %v, want 0", got)
	}
	// A slot used again gets a new handle; the old one still names nothing.
	d2 := lend(t, fd, false, 4)
	defer d2.Close()
	if got := directWrites(t, old, []byte("stale")); fmt.Sprint(got) != "[0]" {
		t.Fatalf("a stale handle wrote: %v", got)
	}
	if got := directWrites(t, d2.Handle(), []byte("abc"), []byte("de"), []byte("d")); fmt.Sprint(got) != "[1 0 1]" {
		t.Fatalf("declared length 4: %v, want [1 0 1] (a piece past it is left to Go)", got)
	}
	want := "5\r\nhello\r\n12c\r\n" + string(bytes.Repeat([]byte("x"), 300)) + "\r\nabcd"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("on the wire %q, want %q", got, want)
	}
}

// A piece a full socket takes only part of: the rest of its frame is kept
// for Go, which writes it first; until then the loop writes nothing more.
func TestDirectWriteFullSocket(t *testing.T) {
	fd, peer := socketPair(t)
	d := lend(t, fd, true, -1)
	defer d.Close()
	var sent bytes.Buffer
	piece := make([]byte, 100_003)
	var results []uint64
	for i := 0; i < 64; i++ {
		for j := range piece {
			piece[j] = byte('a' + (i+j)%26)
		}
		r := directWrites(t, d.Handle(), piece)[0]
		results = append(results, r)
		if r == 0 {
			break
		}
		sent.Write(piece)
		if r == 2 {
			if again := directWrites(t, d.Handle(), []byte("more")); again[0] != 0 {
				t.Fatalf("a write behind a kept frame: %v, want 0", again)
			}
			break
		}
	}
	if results[len(results)-1] != 2 {
		t.Fatalf("results %v: the socket never filled mid-piece", results)
	}
	l := d.Take()
	if int(l.Written) != sent.Len() || len(l.Carry) == 0 || l.Err != 0 {
		t.Fatalf("lent: written %d (want %d), carry %d bytes, err %v", l.Written, sent.Len(), len(l.Carry), l.Err)
	}
	// Go's part: the kept bytes, then the end of the body.
	done := make(chan error, 1)
	if err := syscall.SetNonblock(fd, false); err != nil {
		t.Fatal(err)
	}
	go func() {
		rest := append(l.Carry, "0\r\n\r\n"...)
		for len(rest) > 0 {
			n, err := syscall.Write(fd, rest)
			if err != nil {
				done <- err
				return
			}
			rest = rest[n:]
		}
		done <- nil
	}()
	body, err := io.ReadAll(httputil.NewChunkedReader(bufio.NewReader(peer)))
	if err != nil {
		t.Fatalf("the chunked body does not parse: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, sent.Bytes()) {
		t.Fatalf("body of %d bytes differs from the %d sent", len(body), sent.Len())
	}
	d.Give(-1)
}

// Nothing is taken from a piece when the socket has no room at all, or the
// client has gone; the latter is kept for Go to report.
func TestDirectWriteRefused(t *testing.T) {
	fd, peer := socketPair(t)
	fill := make([]byte, 64<<10)
	for {
		if _, err := syscall.Write(fd, fill); err == syscall.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	d := lend(t, fd, false, -1)
	defer d.Close()
	if got := directWrites(t, d.Handle(), []byte("no room")); fmt.Sprint(got) != "[0]" {
		t.Fatalf("a write to a full socket: %v, want 0", got)
	}
	if l := d.Take(); l.Written != 0 || l.Err != 0 || l.Carry != nil {
		t.Fatalf("after a refused write: %+v, want nothing", l)
	}
	d.Give(-1)
	peer.Close()
	if got := directWrites(t, d.Handle(), []byte("gone")); fmt.Sprint(got) != "[0]" {
		t.Fatalf("a write to a client that has gone: %v, want 0", got)
	}
	if l := d.Take(); l.Err != syscall.EPIPE || l.Written != 0 {
		t.Fatalf("after the client left: %+v, want EPIPE", l)
	}
	d.Give(-1)
}

// A piece over the bound is left to Go, which writes it from Python's bytes.
func TestDirectWriteLargePiece(t *testing.T) {
	fd, _ := socketPair(t)
	d := lend(t, fd, false, -1)
	defer d.Close()
	if got := directWrites(t, d.Handle(), make([]byte, 1<<20+1)); fmt.Sprint(got) != "[0]" {
		t.Fatalf("a piece over 1 MiB: %v, want 0", got)
	}
	if l := d.Take(); l.Written != 0 || l.Carry != nil {
		t.Fatalf("after a piece over the bound: %+v, want nothing", l)
	}
	d.Give(-1)
}
