package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"
)

// The Go functions _hornbeam_web calls while it runs a request. Each takes the
// request's id first, then its own arguments.

var errEnded = errors.New("web: the request has ended")

// decode unmarshals [id, fields...] and finds the request; it returns errEnded
// (with the fields decoded) when the request is gone.
func (s *Server) decode(fn string, data []byte, fields ...any) (*request, error) {
	var raw []cbor.RawMessage
	var id uint64
	if err := cbor.Unmarshal(data, &raw); err != nil || len(raw) != len(fields)+1 || cbor.Unmarshal(raw[0], &id) != nil {
		return nil, fmt.Errorf("%s: bad arguments", fn)
	}
	for i, f := range fields {
		if err := cbor.Unmarshal(raw[i+1], f); err != nil {
			return nil, fmt.Errorf("%s: argument %d: %w", fn, i+2, err)
		}
	}
	v, ok := s.reqs.Load(id)
	if !ok {
		return nil, errEnded
	}
	return v.(*request), nil
}

var cborNil = []byte{0xf6}

// pyRead returns [up to n bytes of the body, whether more may follow].
func (s *Server) pyRead(_ context.Context, data []byte) ([]byte, error) {
	var n int
	req, err := s.decode("http_read", data, &n)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, min(max(n, 1), 1<<20))
	got, err := io.ReadFull(req.r.Body, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		var ne net.Error
		if !errors.As(err, &ne) {
			// Not the connection failing: the body itself is malformed, which
			// the client is told with 400 unless the app has answered.
			req.badBody = err
		}
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	return cbor.Marshal([]any{buf[:got], err == nil})
}

// pyStart sends the status ("200 OK" from WSGI, 200 from ASGI) and headers.
func (s *Server) pyStart(_ context.Context, data []byte) ([]byte, error) {
	var status any
	var headers [][2]string
	req, err := s.decode("http_start", data, &status, &headers)
	if err != nil {
		return nil, err
	}
	return cborNil, req.start(fmt.Sprint(status), headers)
}

func (s *Server) pyWrite(_ context.Context, data []byte) ([]byte, error) {
	var body []byte
	req, err := s.decode("http_write", data, &body)
	if err != nil {
		return nil, err
	}
	n, err := req.w.Write(body)
	req.written += int64(n)
	if f, ok := req.w.(http.Flusher); ok {
		f.Flush()
	}
	if err != nil {
		return nil, fmt.Errorf("client gone: %w", err)
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
	select {
	case <-req.r.Context().Done():
	case <-req.done:
	}
	return cborNil, nil
}

func (s *Server) pyWSAccept(_ context.Context, data []byte) ([]byte, error) {
	var sub *string
	var headers [][2]string
	req, err := s.decode("ws_accept", data, &sub, &headers)
	if err != nil {
		return nil, err
	}
	if req.ws != nil || req.started {
		return nil, errors.New("websocket.accept sent twice")
	}
	for _, kv := range headers {
		req.w.Header().Add(kv[0], kv[1])
	}
	opts := &websocket.AcceptOptions{}
	if sub != nil {
		opts.Subprotocols = []string{*sub}
	}
	c, err := websocket.Accept(req.w, req.r, opts)
	if err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	c.SetReadLimit(maxMessageBytes)
	req.ws, req.started, req.status = c, true, http.StatusSwitchingProtocols
	return cborNil, nil
}

// pyWSReceive returns ["text", str], ["bytes", bytes] or ["close", code, reason].
func (s *Server) pyWSReceive(_ context.Context, data []byte) ([]byte, error) {
	req, err := s.decode("ws_receive", data)
	if err != nil && !errors.Is(err, errEnded) {
		return nil, err
	}
	if req == nil || req.ws == nil {
		return cbor.Marshal([]any{"close", 1006, ""})
	}
	typ, msg, release, err := s.readMessage(req.r.Context(), req.ws)
	if errors.Is(err, errWSBudget) {
		s.log.Warn("websocket closed: the node's websocket buffers are full", "err", err)
		req.ws.Close(websocket.StatusTryAgainLater, "server busy")
		return cbor.Marshal([]any{"close", int(websocket.StatusTryAgainLater), ""})
	}
	if err != nil {
		code := int(websocket.CloseStatus(err))
		if code < 0 {
			code = 1006
		}
		return cbor.Marshal([]any{"close", code, ""})
	}
	// The CBOR goes to Python at once; the budget counts until then.
	defer release()
	if typ == websocket.MessageText {
		return cbor.Marshal([]any{"text", string(msg)})
	}
	return cbor.Marshal([]any{"bytes", msg})
}

// pyWSSend sends text when it is not None, else the bytes.
func (s *Server) pyWSSend(_ context.Context, data []byte) ([]byte, error) {
	var text *string
	var bin []byte
	req, err := s.decode("ws_send", data, &text, &bin)
	if err != nil {
		return nil, err
	}
	if req.ws == nil {
		return nil, errors.New("websocket is not open")
	}
	ctx, cancel := context.WithTimeout(req.r.Context(), 30*time.Second)
	defer cancel()
	if text != nil {
		err = req.ws.Write(ctx, websocket.MessageText, []byte(*text))
	} else {
		err = req.ws.Write(ctx, websocket.MessageBinary, bin)
	}
	if err != nil {
		return nil, fmt.Errorf("websocket send: %w", err)
	}
	return cborNil, nil
}

// pyWSClose closes an accepted websocket, or refuses the handshake (403).
func (s *Server) pyWSClose(_ context.Context, data []byte) ([]byte, error) {
	var code int
	var reason string
	req, err := s.decode("ws_close", data, &code, &reason)
	if errors.Is(err, errEnded) {
		return cborNil, nil
	}
	if err != nil {
		return nil, err
	}
	if req.ws == nil {
		req.fail(http.StatusForbidden, "websocket refused\n")
		return cborNil, nil
	}
	req.ws.Close(websocket.StatusCode(code), reason)
	req.ws = nil
	return cborNil, nil
}
