package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"
)

// request is one request's state while the app runs it.
type request struct {
	w       http.ResponseWriter
	r       *http.Request
	done    chan struct{} // closed when ServeHTTP returns
	ws      *websocket.Conn
	started bool
	status  int
	written int64
	badBody error // the body could not be read: malformed (chunking, length)
}

func (req *request) fail(code int, msg string) {
	if req.started {
		return // too late for a status: the client sees a cut response
	}
	req.started, req.status = true, code
	req.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	req.w.WriteHeader(code)
	n, _ := io.WriteString(req.w, msg)
	req.written += int64(n)
}

func (req *request) start(status string, headers [][2]string) error {
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 100 || code > 999 {
		return fmt.Errorf("bad status %q", status)
	}
	h := req.w.Header()
	for _, kv := range headers {
		h.Add(kv[0], kv[1])
	}
	req.started, req.status = true, code
	req.w.WriteHeader(code)
	return nil
}

// latin1 decodes bytes as ISO-8859-1, as PEP 3333 wants for native strings.

func hasHeader(headers [][2]string, name string) bool {
	for _, kv := range headers {
		if strings.EqualFold(kv[0], name) {
			return true
		}
	}
	return false
}

// appResponse is what handle returns: [status, headers, body, streamed].
type appResponse struct {
	_        struct{} `cbor:",toarray"`
	Status   any      // "200 OK" (WSGI) or 200 (ASGI)
	Headers  [][2]string
	Body     []byte
	Streamed bool
}

// decodeResponse decodes handle's result with the body aliasing out rather
// than copied: a whole body is often large, and each copy is garbage.
func decodeResponse(out []byte) (appResponse, error) {
	var res appResponse
	if len(out) > 0 && out[0] == 0x84 {
		rest, err := cbor.UnmarshalFirst(out[1:], &res.Status)
		if err == nil {
			rest, err = cbor.UnmarshalFirst(rest, &res.Headers)
		}
		if err == nil {
			if body, after, ok := byteString(rest); ok {
				res.Body = body
				if _, err = cbor.UnmarshalFirst(after, &res.Streamed); err == nil {
					return res, nil
				}
			}
		}
	}
	res = appResponse{}
	return res, cbor.Unmarshal(out, &res)
}

// byteString splits a definite-length CBOR byte string off the front of b.
func byteString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != 2 {
		return nil, nil, false
	}
	n, h := uint64(b[0]&0x1f), 1
	switch {
	case n < 24:
	case n <= 27:
		h += 1 << (n - 24)
		if len(b) < h {
			return nil, nil, false
		}
		n = 0
		for _, c := range b[1:h] {
			n = n<<8 | uint64(c)
		}
	default:
		return nil, nil, false
	}
	if uint64(len(b)-h) < n {
		return nil, nil, false
	}
	return b[h : h+int(n) : h+int(n)], b[h+int(n):], true
}
