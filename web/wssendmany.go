package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// wsOutMsg is one message of ws_send_many: text, or else binary.
type wsOutMsg struct {
	_    struct{} `cbor:",toarray"`
	Text *string
	Bin  []byte
}

// pyWSSendMany sends messages in order, in one call: the Python side queues
// what the app sends while a call is in flight, as a transport buffers
// under uvicorn, so that many small messages cost a few calls.
func (s *Server) pyWSSendMany(_ context.Context, data []byte) ([]byte, error) {
	var msgs []wsOutMsg
	req, err := s.decode("ws_send_many", data, &msgs)
	if err != nil {
		return nil, err
	}
	ws := req.openWS()
	if ws == nil {
		return nil, errors.New("websocket is not open")
	}
	ctx, cancel := context.WithTimeout(req.r.Context(), 30*time.Second)
	defer cancel()
	for _, m := range msgs {
		if m.Text != nil {
			err = ws.c.Write(ctx, websocket.MessageText, []byte(*m.Text))
		} else {
			err = ws.c.Write(ctx, websocket.MessageBinary, m.Bin)
		}
		if err != nil {
			return nil, req.gone(fmt.Errorf("websocket send: %w", err))
		}
	}
	return cborNil, nil
}
