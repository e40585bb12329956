package web

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// h1body reads a request body of a plain HTTP/1.1 connection: by its
// Content-Length, or chunked. Errors: io.ErrUnexpectedEOF when the client
// closes early, a net.Error for a deadline or a failed connection, and
// errBadChunk for malformed chunking (the client is then told 400).
type h1body struct {
	c         *h1conn
	chunked   bool
	left      int64 // bytes left: of the body, or of the current chunk
	needCRLF  bool  // chunked: a chunk's data ended; its CRLF is next
	eof       atomic.Bool
	expect    bool // the client waits for 100 Continue before sending
	continued bool
	err       error
	// wouldClose: what is left of the body ends the connection (a body the
	// client waits to be asked for, or one too large to drop); read by the
	// response's head, which another goroutine may write.
	wouldClose atomic.Bool
}

var errBadChunk = errors.New("malformed chunked encoding")

// maxChunkLine bounds a chunk-size line (with extensions) and a trailer line.
const maxChunkLine = 4096

func (b *h1body) reset(chunked bool, length int64, expect bool) {
	b.chunked, b.left, b.needCRLF, b.expect, b.continued, b.err = chunked, length, false, expect, false, nil
	b.eof.Store(!chunked && length == 0)
	b.noteLeft()
}

func (b *h1body) noteLeft() {
	b.wouldClose.Store(!b.eof.Load() && (b.expect && !b.continued || !b.chunked && b.left > maxUnreadBody))
}

func (b *h1body) Close() error { return nil }

func (b *h1body) Read(p []byte) (int, error) {
	if b.eof.Load() {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.expect && !b.continued {
		b.continued = true
		if err := b.c.writeContinue(); err != nil {
			b.err = err
			return 0, err
		}
	}
	n, err := b.read(p)
	if err != nil {
		b.err = err
	}
	b.noteLeft()
	return n, err
}

func (b *h1body) read(p []byte) (int, error) {
	if !b.chunked {
		n, err := b.data(p)
		if b.left == 0 {
			b.eof.Store(true)
		}
		return n, err
	}
	for {
		if b.left > 0 {
			n, err := b.data(p)
			if b.left == 0 {
				b.needCRLF = true
			}
			return n, err
		}
		line, err := b.line()
		if err != nil {
			return 0, err
		}
		if b.needCRLF {
			if len(line) != 0 {
				return 0, errBadChunk
			}
			b.needCRLF = false
			continue
		}
		size, err := chunkSize(line)
		if err != nil {
			return 0, err
		}
		if size > 0 {
			b.left = size
			continue
		}
		// The last chunk: trailers (dropped, as they reach no app) to the empty line.
		for total := 0; ; {
			line, err := b.line()
			if err != nil {
				return 0, err
			}
			if len(line) == 0 {
				break
			}
			if total += len(line); total > b.c.s.maxHeader {
				return 0, fmt.Errorf("%w: trailers too large", errBadChunk)
			}
		}
		b.eof.Store(true)
		return 0, io.EOF
	}
}

// data reads up to left bytes of body data into p.
func (b *h1body) data(p []byte) (int, error) {
	c := b.c
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	if c.rd == c.wr {
		if len(p) >= len(c.buf) {
			// A large read goes straight to the caller's buffer.
			n, err := c.read(p)
			b.left -= int64(n)
			return n, unexpectedEOF(err)
		}
		if err := c.fill(len(c.buf)); err != nil {
			return 0, unexpectedEOF(err)
		}
	}
	n := copy(p, c.buf[c.rd:c.wr])
	c.rd += n
	b.left -= int64(n)
	return n, nil
}

// line reads one line (without its CRLF or LF) of chunk framing.
func (b *h1body) line() ([]byte, error) {
	c := b.c
	for {
		for i := c.rd; i < c.wr; i++ {
			if c.buf[i] == '\n' {
				line := c.buf[c.rd:i]
				c.rd = i + 1
				if n := len(line); n > 0 && line[n-1] == '\r' {
					line = line[:n-1]
				}
				return line, nil
			}
		}
		if c.wr-c.rd > maxChunkLine {
			return nil, fmt.Errorf("%w: line too long", errBadChunk)
		}
		if err := c.fill(max(len(c.buf), 2*maxChunkLine)); err != nil {
			return nil, unexpectedEOF(err)
		}
	}
}

// chunkSize parses a chunk-size line: hex digits, then optional
// extensions after ';' (ignored).
func chunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i >= 15 {
			return 0, fmt.Errorf("%w: chunk too large", errBadChunk)
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, errBadChunk
	}
	for ; i < len(line) && (line[i] == ' ' || line[i] == '\t'); i++ {
	}
	if i < len(line) && line[i] != ';' {
		return 0, errBadChunk
	}
	return n, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
