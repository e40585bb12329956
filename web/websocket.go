package web

import (
	"net/http"
	"strings"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
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
	_, err = s.py.Load().CallOn(r.Context(), pybridge.LaneHTTP, "_hornbeam_web.asgi", "handle_ws", args)
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
