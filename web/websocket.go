package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"
)

// maxMessageBytes bounds one websocket message a client may send.
const maxMessageBytes = 16 << 20

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// serveWebSocket runs an ASGI websocket connection. It is not bound by
// --timeout: a websocket lives as long as both ends want.
func (s *Server) serveWebSocket(req *request, id uint64) {
	r := req.r
	sc := s.scope(r)
	sc["type"] = "websocket"
	sc["scheme"] = "ws"
	if r.TLS != nil {
		sc["scheme"] = "wss"
	}
	delete(sc, "method")
	var subs []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				subs = append(subs, p)
			}
		}
	}
	if subs == nil {
		subs = []string{}
	}
	sc["subprotocols"] = subs
	args, err := cbor.Marshal([]any{id, s.cfg.App, sc})
	if err != nil {
		req.fail(http.StatusBadRequest, "bad request\n")
		return
	}
	_, err = s.py.Load().Call(r.Context(), "_hornbeam_web.asgi", "handle_ws", args)
	if err != nil && r.Context().Err() == nil {
		s.log.Error("websocket app failed", "path", r.URL.Path, "err", err)
	}
	switch {
	case req.ws != nil:
		req.ws.Close(websocket.StatusNormalClosure, "")
	case !req.started:
		// Closed (or failed) before accepting: the handshake is refused.
		req.fail(http.StatusForbidden, "websocket refused\n")
	}
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
	typ, msg, err := req.ws.Read(req.r.Context())
	if err != nil {
		code := int(websocket.CloseStatus(err))
		if code < 0 {
			code = 1006
		}
		return cbor.Marshal([]any{"close", code, ""})
	}
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
