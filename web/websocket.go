package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/internal/bytebudget"
	"github.com/hornbeam-go/hornbeam/pybridge"
)

// maxMessageBytes bounds one websocket message a client may send.
const maxMessageBytes = 16 << 20

func isWebSocket(r *http.Request) bool {
	if r.Header["Upgrade"] == nil { // most requests: no canonicalising lookups
		return false
	}
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// wsConn is an accepted websocket. One goroutine reads it (so pongs and
// close frames are seen even while the app is busy) and hands the app one
// message at a time: a client cannot make the node buffer more than one
// message per connection; while the app does not receive, the reader stops,
// pings go unanswered and the connection ends, as with uvicorn.
type wsConn struct {
	c      *websocket.Conn
	msgs   chan wsMsg    // from the reader; closed after the last
	code   atomic.Int32  // the close code, once the reader has stopped
	gone   chan struct{} // closed when the connection ends
	end    sync.Once
	cancel context.CancelFunc
	budget *bytebudget.Budget // the node's websocket bytes not yet in Python
}

// wsMsg is a message for the app, or its end (close is the code).
type wsMsg struct {
	typ     websocket.MessageType
	data    []byte
	close   int
	release func() // gives data's bytes back to the node's budget
}

func newWSConn(c *websocket.Conn, b *bytebudget.Budget, pingInterval, pingTimeout time.Duration) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	ws := &wsConn{c: c, msgs: make(chan wsMsg, 1), gone: make(chan struct{}), cancel: cancel, budget: b}
	go ws.read(ctx)
	if pingInterval > 0 {
		go ws.ping(ctx, pingInterval, pingTimeout)
	}
	return ws
}

func (ws *wsConn) read(ctx context.Context) {
	defer close(ws.msgs)
	for {
		typ, data, release, err := readMessage(ctx, ws.c, ws.budget)
		if errors.Is(err, errWSBudget) {
			ws.code.Store(int32(websocket.StatusTryAgainLater))
			ws.close(websocket.StatusTryAgainLater, "server busy")
			return
		}
		if err == nil && typ == websocket.MessageText && !utf8.Valid(data) {
			release()
			ws.code.Store(int32(websocket.StatusInvalidFramePayloadData))
			ws.close(websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in a text message")
			return
		}
		if err != nil {
			code := int(websocket.CloseStatus(err))
			var ne net.Error
			switch {
			case code >= 0: // the client closed (or we did, with this code)
			case errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
				errors.Is(err, context.Canceled), errors.As(err, &ne):
				code = int(websocket.StatusAbnormalClosure)
			default:
				// Not the connection failing: the client broke the protocol
				// (an unmasked frame, a bad opcode): 1002, as RFC 6455 says.
				code = int(websocket.StatusProtocolError)
				ws.code.CompareAndSwap(0, int32(code))
				ws.close(websocket.StatusProtocolError, "protocol error")
			}
			ws.code.CompareAndSwap(0, int32(code))
			return
		}
		select {
		case ws.msgs <- wsMsg{typ: typ, data: data, release: release}:
		case <-ws.gone:
			release()
			return
		}
	}
}

// ping sends a ping every interval; a pong late by more than timeout ends
// the connection (1011), as uvicorn's --ws-ping-interval/--ws-ping-timeout.
func (ws *wsConn) ping(ctx context.Context, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ws.gone:
			return
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := ws.c.Ping(pctx)
		cancel()
		if err != nil {
			ws.close(websocket.StatusInternalError, "keepalive ping timeout")
			return
		}
	}
}

// receive waits for the next message for the app.
func (ws *wsConn) receive(ctx context.Context) wsMsg {
	select {
	case m, ok := <-ws.msgs:
		if !ok {
			code := int(ws.code.Load())
			if code == 0 {
				code = int(websocket.StatusAbnormalClosure)
			}
			return wsMsg{close: code}
		}
		return m
	case <-ctx.Done():
		return wsMsg{close: int(websocket.StatusAbnormalClosure)}
	}
}

// close ends the connection once, with code.
func (ws *wsConn) close(code websocket.StatusCode, reason string) {
	ws.end.Do(func() {
		close(ws.gone)
		ws.c.Close(code, reason)
		ws.cancel()
	})
}

// serveWebSocket runs an ASGI websocket connection. It is not bound by
// --timeout nor by --limit-concurrency (an idle websocket must not lock out
// HTTP): --ws-max bounds them.
func (s *Server) serveWebSocket(req *request) {
	select {
	case s.wsSem <- struct{}{}:
		defer func() { <-s.wsSem }()
	default:
		req.fail(http.StatusServiceUnavailable, "server busy: --ws-max websockets open\n")
		return
	}
	id := s.nextID.Add(1)
	s.reqs.Store(id, req)
	defer s.reqs.Delete(id)
	r := req.r
	subs := []string{}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				subs = append(subs, p)
			}
		}
	}
	args := cborText(cborUint(cborArray(make([]byte, 0, 512), 3), id), s.cfg.App)
	args = s.appendScope(args, r, subs)
	_, err := s.interp().CallOn(r.Context(), pybridge.LaneHTTP, "_hornbeam_web.asgi", "handle_ws", args)
	if err != nil {
		s.logAppError(req, err)
	}
	req.mu.Lock()
	ws, started := req.ws, req.started
	req.mu.Unlock()
	switch {
	case ws != nil && err != nil && r.Context().Err() == nil:
		ws.close(websocket.StatusInternalError, "") // RFC 6455 7.4.1: the app failed
	case ws != nil:
		ws.close(websocket.StatusNormalClosure, "")
	case !started:
		// Closed (or failed) before accepting: the handshake is refused.
		req.fail(http.StatusForbidden, "websocket refused\n")
	}
}

func (s *Server) pyWSAccept(_ context.Context, data []byte) ([]byte, error) {
	var sub *string
	var headers headerList
	req, err := s.decode("ws_accept", data, &sub, &headers)
	if err != nil {
		return nil, err
	}
	req.mu.Lock()
	defer req.mu.Unlock()
	if req.ws != nil || req.started || req.ended {
		return nil, errors.New("websocket.accept sent twice, or after the connection ended")
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
		req.started = true // the handshake has been answered
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	c.SetReadLimit(maxMessageBytes)
	req.ws, req.started, req.status = newWSConn(c, s.wsBudget, s.cfg.WSPingInterval, s.cfg.WSPingTimeout), true, http.StatusSwitchingProtocols
	return cborNil, nil
}

// openWS returns the request's accepted websocket, or nil.
func (req *request) openWS() *wsConn {
	req.mu.Lock()
	defer req.mu.Unlock()
	return req.ws
}

// pyWSReceive returns ["text", str], ["bytes", bytes] or ["close", code, reason].
func (s *Server) pyWSReceive(ctx context.Context, data []byte) ([]byte, error) {
	req, err := s.decode("ws_receive", data)
	if err != nil && !errors.Is(err, errEnded) {
		return nil, err
	}
	var ws *wsConn
	if req != nil {
		ws = req.openWS()
	}
	if ws == nil {
		return cbor.Marshal([]any{"close", 1006, ""})
	}
	m := ws.receive(ctx)
	if m.release != nil {
		// The CBOR goes to Python at once; the budget counts until then.
		defer m.release()
	}
	switch {
	case m.close != 0:
		return cbor.Marshal([]any{"close", m.close, ""})
	case m.typ == websocket.MessageText:
		return cbor.Marshal([]any{"text", string(m.data)})
	default:
		return cbor.Marshal([]any{"bytes", m.data})
	}
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
	ws := req.openWS()
	if ws == nil {
		req.fail(http.StatusForbidden, "websocket refused\n")
		return cborNil, nil
	}
	ws.close(websocket.StatusCode(code), reason)
	return cborNil, nil
}
