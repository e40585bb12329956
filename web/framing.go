package web

import (
	"bytes"
	"strconv"
	"sync"
)

// Request smuggling: net/http reads a request that has both Content-Length
// and Transfer-Encoding by its chunking, deletes the Content-Length and keeps
// the connection, and it joins folded header lines. A proxy in front of us
// that frames such a request by its Content-Length (or stops at the fold)
// sees a different next request than we do. RFC 9112 (sections 6.1, 6.3 and
// 5.2) wants these refused and the connection closed, as h11 and nginx do.
// By the time the handler runs, net/http has removed the evidence, so a
// framer watches the bytes of each plain HTTP/1 connection as net/http reads
// them, finds each request's header block, and notes what is wrong with it;
// ServeHTTP takes the notes in order, one per request.

// framer follows the requests of one connection: header block, then the body
// (by Content-Length or chunked), then the next header block.
type framer struct {
	mu      sync.Mutex
	st      framerState
	line    []byte // the line being read (header block and chunk lines)
	left    int64  // body bytes to skip
	hdr     headerNotes
	hdrSize int
	limit   int      // header block bound; past it the framer gives up
	notes   []string // per request in order: "" when sound, else what is wrong
	lost    bool     // the stream could not be followed: no more notes
}

type framerState int

const (
	fsRequestLine framerState = iota
	fsHeaders
	fsBody
	fsChunkSize
	fsChunkData
	fsChunkEnd
	fsTrailers
)

type headerNotes struct {
	http10       bool
	cl, te, fold bool
	clValue      int64
	clBad        bool
	chunked      bool // Transfer-Encoding is exactly "chunked"
}

func newFramer(limit int) *framer { return &framer{limit: limit + 4096} }

// feed follows b, bytes read from the connection.
func (f *framer) feed(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(b) > 0 && !f.lost {
		switch f.st {
		case fsBody, fsChunkData:
			n := min(int64(len(b)), f.left)
			b, f.left = b[n:], f.left-n
			if f.left == 0 {
				if f.st == fsBody {
					f.st = fsRequestLine
				} else {
					f.st = fsChunkEnd
				}
			}
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				f.line = append(f.line, b...)
				f.hdrSize += len(b)
				if f.hdrSize > f.limit {
					f.lost = true
				}
				return
			}
			f.line = append(f.line, b[:i]...)
			f.hdrSize += i + 1
			b = b[i+1:]
			line := bytes.TrimSuffix(f.line, []byte("\r"))
			f.lineDone(line)
			f.line = f.line[:0]
			if f.hdrSize > f.limit {
				f.lost = true
			}
		}
	}
}

// lineDone takes one line of a header block, chunk size or trailer.
func (f *framer) lineDone(line []byte) {
	switch f.st {
	case fsRequestLine:
		if len(line) == 0 {
			return // an empty line before a request is ignored (RFC 9112 2.2)
		}
		f.hdr = headerNotes{http10: bytes.HasSuffix(line, []byte(" HTTP/1.0"))}
		f.st = fsHeaders
	case fsHeaders:
		if len(line) == 0 {
			f.endHeaders()
			return
		}
		if line[0] == ' ' || line[0] == '\t' {
			f.hdr.fold = true
			return
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (f.hdr.cl && n != f.hdr.clValue) {
				f.hdr.clBad = true
			}
			f.hdr.cl, f.hdr.clValue = true, n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			f.hdr.chunked = !f.hdr.te && bytes.EqualFold(value, []byte("chunked"))
			f.hdr.te = true
		}
	case fsChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimRight(size, " \t")), 16, 64)
		switch {
		case err != nil || n < 0:
			f.lost = true
		case n == 0:
			f.st = fsTrailers
		default:
			f.st, f.left = fsChunkData, n
		}
	case fsChunkEnd:
		if len(line) != 0 {
			f.lost = true
		}
		f.st = fsChunkSize
	case fsTrailers:
		if len(line) == 0 {
			f.st, f.hdrSize = fsRequestLine, 0
		}
	}
}

func (f *framer) endHeaders() {
	h := f.hdr
	note := ""
	switch {
	case h.cl && h.te:
		note = "both Content-Length and Transfer-Encoding"
	case h.te && h.http10:
		note = "Transfer-Encoding in an HTTP/1.0 request"
	case h.fold:
		note = "a folded header line (obs-fold)"
	}
	f.notes = append(f.notes, note)
	f.hdrSize = 0
	switch {
	case note != "":
		f.lost = true // refused and closed: what follows is never read as a request
	case h.te && h.chunked:
		f.st = fsChunkSize
	case h.te || h.clBad:
		f.lost = true // net/http refuses these itself and closes
	case h.cl && h.clValue > 0:
		f.st, f.left = fsBody, h.clValue
	default:
		f.st = fsRequestLine
	}
}

// next returns the note on the next request, and false when the framer lost
// the stream (the request is then judged by net/http alone).
func (f *framer) next() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.notes) == 0 {
		return "", false
	}
	n := f.notes[0]
	f.notes = f.notes[1:]
	return n, true
}
