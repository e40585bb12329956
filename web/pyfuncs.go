package web

import (
	"context"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// The Go functions _hornbeam_web calls while it runs a request. Each takes the
// request's id first, then its own arguments.

var errEnded = errors.New("web: the request has ended")

// decode reads [id, fields...], Python's argument tuple, and finds the
// request; it returns errEnded (with the fields decoded) when the request is
// gone. A []byte field is the bytes of data itself, not a copy: the pieces of
// a streamed response (http_write) are the largest arguments Python sends,
// and copying each, into a raw message and then a byte slice, cost more than
// writing it. Other fields, and byte strings of indefinite length, are
// decoded by the generic decoder.
func (s *Server) decode(fn string, data []byte, fields ...any) (*request, error) {
	if major, tag, rest, ok := cborReadHead(data); ok && major == 6 && tag == cborTuple {
		data = rest
	}
	major, n, rest, ok := cborReadHead(data)
	if !ok || major != 4 || n != uint64(len(fields))+1 {
		return nil, fmt.Errorf("%s: bad arguments", fn)
	}
	var id uint64
	rest, err := cbor.UnmarshalFirst(rest, &id)
	if err != nil {
		return nil, fmt.Errorf("%s: bad arguments", fn)
	}
	for i, f := range fields {
		if b, ok := f.(*[]byte); ok {
			if v, r, ok := byteString(rest); ok {
				*b, rest = v, r
				continue
			}
		}
		if rest, err = cbor.UnmarshalFirst(rest, f); err != nil {
			return nil, fmt.Errorf("%s: argument %d: %w", fn, i+2, err)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%s: bad arguments", fn)
	}
	req, ok := s.reqs.Load(id)
	if !ok {
		return nil, errEnded
	}
	return req, nil
}

var cborNil = []byte{0xf6}

// pyRead returns [up to n bytes of the body, whether more may follow].
func (s *Server) pyRead(_ context.Context, data []byte) ([]byte, error) {
	var n int
	req, err := s.decode("http_read", data, &n)
	if err != nil {
		return nil, err
	}
	// The body is read in place, behind room for the heads of the array and
	// the byte string, which are written in front of it once its length is
	// known: one copy of a 64 KiB chunk less than encoding it afterwards.
	const room = 1 + 9
	size := min(max(n, 1), 1<<20)
	buf := make([]byte, room+size+1)
	got, more, err := req.readBody(buf[room : room+size])
	if err != nil {
		return nil, err
	}
	head := cborHead(cborArray(make([]byte, 0, room), 2), 2, uint64(got))
	start := room - len(head)
	copy(buf[start:], head)
	end := room + got
	cborBool(buf[:end], more)
	return buf[start : end+1], nil
}

// pyStart sends the status ("200 OK" from WSGI, 200 from ASGI) and headers.
func (s *Server) pyStart(_ context.Context, data []byte) ([]byte, error) {
	var status any
	var headers headerList
	req, err := s.decode("http_start", data, &status, &headers)
	if err != nil {
		return nil, err
	}
	if err := req.start(fmt.Sprint(status), headers, nil); err != nil {
		if errors.Is(err, errFraming) {
			s.log.Error("bad response from the app", "path", req.r.URL.Path, "err", err)
		}
		return nil, err
	}
	return cborNil, nil
}

func (s *Server) pyWrite(_ context.Context, data []byte) ([]byte, error) {
	var body []byte
	req, err := s.decode("http_write", data, &body)
	if err != nil {
		return nil, err
	}
	handle, err := req.write(body)
	if err != nil {
		return nil, err
	}
	if handle != 0 {
		// The socket is lent to the loop's thread: Python writes the next
		// pieces itself (_hornbeam.http_direct).
		return cborUint(nil, handle), nil
	}
	return cborNil, nil
}

// pyWaitDisconnect returns when the client has gone or the response has ended.
func (s *Server) pyWaitDisconnect(_ context.Context, data []byte) ([]byte, error) {
	req, err := s.decode("http_wait_disconnect", data)
	if errors.Is(err, errEnded) {
		return cborNil, nil
	}
	if err != nil {
		return nil, err
	}
	// The request's context ends when the client leaves, and at the latest
	// when ServeHTTP returns (net/http's, and the plain server's).
	<-req.r.Context().Done()
	return cborNil, nil
}
