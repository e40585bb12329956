package tests

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestASGIWebSocket(t *testing.T) {
	base := startApp(t, "asgiapp:ws_app", "-k", "asgi")
	wsURL := "ws" + strings.TrimPrefix(base, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, resp, err := websocket.Dial(ctx, wsURL+"/ws", &websocket.DialOptions{Subprotocols: []string{"chat.v1"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat.v1" {
		t.Errorf("subprotocol %q", got)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	typ, msg, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(msg) != "echo: hi" {
		t.Fatalf("text echo: %v %q %v", typ, msg, err)
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	typ, msg, err = c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || string(msg) != "\x03\x02\x01" {
		t.Fatalf("binary echo: %v %v %v", typ, msg, err)
	}
	c.Write(ctx, websocket.MessageText, []byte("close please"))
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != 4001 {
		t.Fatalf("close code %d (%v), want 4001", code, err)
	}

	// A client that goes away is seen by the app as websocket.disconnect.
	c2, _, err := websocket.Dial(ctx, wsURL+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close(websocket.StatusGoingAway, "bye")

	// Closing before accepting refuses the handshake with 403.
	_, resp, err = websocket.Dial(ctx, wsURL+"/refuse", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("refused websocket: %v %v", resp, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
	// Plain HTTP still works on the same app.
	if code, _, got := get(t, "GET", base+"/", nil); code != 201 || got != "hello asgi" {
		t.Fatalf("http after websockets: %d %q", code, got)
	}
}
