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
	var a struct {
		_           struct{} `cbor:",toarray"`
		ID          uint64
		Subprotocol *string
		Headers     [][2]string
	}
	if err := cbor.Unmarshal(data, &a); err != nil {
		return nil, err
	}
	req, err := s.request(a.ID)
	if err != nil {
		return nil, err
	}
	if req.ws != nil || req.started {
		return nil, errors.New("websocket.accept sent twice")
	}
	for _, kv := range a.Headers {
		req.w.Header().Add(kv[0], kv[1])
	}
	opts := &websocket.AcceptOptions{}
	if a.Subprotocol != nil {
		opts.Subprotocols = []string{*a.Subprotocol}
	}
	c, err := websocket.Accept(req.w, req.r, opts)
	if err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	c.SetReadLimit(maxMessageBytes)
	req.ws, req.started, req.status = c, true, http.StatusSwitchingProtocols
	return cbor.Marshal(nil)
}

// pyWSReceive returns ["text", str], ["bytes", bytes] or ["close", code, reason].
func (s *Server) pyWSReceive(_ context.Context, data []byte) ([]byte, error) {
	var a []uint64
	if err := cbor.Unmarshal(data, &a); err != nil || len(a) != 1 {
		return nil, errors.New("ws_receive(req): bad arguments")
	}
	req, err := s.request(a[0])
	if err != nil || req.ws == nil {
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

func (s *Server) pyWSSend(_ context.Context, data []byte) ([]byte, error) {
	var a struct {
		_    struct{} `cbor:",toarray"`
		ID   uint64
		Text *string
		Data []byte
	}
	if err := cbor.Unmarshal(data, &a); err != nil {
		return nil, err
	}
	req, err := s.request(a.ID)
	if err != nil || req.ws == nil {
		return nil, errors.New("websocket is not open")
	}
	ctx, cancel := context.WithTimeout(req.r.Context(), 30*time.Second)
	defer cancel()
	if a.Text != nil {
		err = req.ws.Write(ctx, websocket.MessageText, []byte(*a.Text))
	} else {
		err = req.ws.Write(ctx, websocket.MessageBinary, a.Data)
	}
	if err != nil {
		return nil, fmt.Errorf("websocket send: %w", err)
	}
	return cbor.Marshal(nil)
}

func (s *Server) pyWSClose(_ context.Context, data []byte) ([]byte, error) {
	var a struct {
		_      struct{} `cbor:",toarray"`
		ID     uint64
		Code   int
		Reason string
	}
	if err := cbor.Unmarshal(data, &a); err != nil {
		return nil, err
	}
	req, err := s.request(a.ID)
	if err != nil {
		return cbor.Marshal(nil)
	}
	if req.ws == nil {
		req.fail(http.StatusForbidden, "websocket refused\n")
		return cbor.Marshal(nil)
	}
	req.ws.Close(websocket.StatusCode(a.Code), a.Reason)
	req.ws = nil
	return cbor.Marshal(nil)
}
