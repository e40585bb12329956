package tests

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A websocket send whose wait for back pressure is cut short by a timeout
// cancels only that wait: its message and every other task's still go out,
// once each and in each task's order.
func TestWebSocketSendTimeoutLosesNothing(t *testing.T) {
	base := startApp(t, "asgiapp:ws_app", "-k", "asgi")
	wsURL := "ws" + strings.TrimPrefix(base, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 5 {
		c, _, err := websocket.Dial(ctx, wsURL+"/ws", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.SetReadLimit(1 << 20)
		if err := c.Write(ctx, websocket.MessageText, []byte("race please")); err != nil {
			t.Fatal(err)
		}
		texts, blobs := 0, 0
		for done := false; !done; {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("round %d, after %d texts and %d binaries: %v", round, texts, blobs, err)
			}
			switch {
			case typ == websocket.MessageText && string(msg) == "done":
				done = true
			case typ == websocket.MessageText:
				if want := fmt.Sprintf("y%d", texts); string(msg) != want {
					t.Fatalf("round %d: text %q came when %q was due", round, msg, want)
				}
				texts++
			default:
				if len(msg) != 65536 || msg[0] != byte(blobs) || msg[65535] != byte(blobs) {
					t.Fatalf("round %d: binary of %d bytes starting %d came when %d was due", round, len(msg), msg[0], blobs)
				}
				blobs++
			}
		}
		if texts != 200 || blobs != 16 {
			t.Fatalf("round %d: %d texts of 200 and %d binaries of 16", round, texts, blobs)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
}

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

// Websocket messages being read count against a node-wide buffer (here
// 1 MiB): four clients that each send 400,000 bytes of a message and pause
// need more than it holds, so some wait for room and are closed with 1013
// after 10 s; the node goes on serving.
func TestWebSocketBufferIsNodeWide(t *testing.T) {
	base := startApp(t, "asgiapp:ws_app", "-k", "asgi", "--websocket-max-buffer", "1048576")
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	part := make([]byte, 400_000)
	closed := make(chan websocket.StatusCode, 4)
	start := time.Now()
	var senders []*websocket.Conn
	for range 4 {
		c, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		senders = append(senders, c)
		w, err := c.Writer(ctx, websocket.MessageBinary)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(part); err != nil { // the message is not finished
			t.Fatal(err)
		}
		go func() {
			_, _, err := c.Read(ctx)
			closed <- websocket.CloseStatus(err)
		}()
	}
	select {
	case code := <-closed:
		if code != websocket.StatusTryAgainLater {
			t.Fatalf("a client waiting for room was closed with %d, want 1013", code)
		}
		if el := time.Since(start); el < 9*time.Second {
			t.Errorf("closed after %v: it should wait 10 s for room", el)
		}
	case <-ctx.Done():
		t.Fatal("no client was refused: 1.6 MB of messages held under a 1 MiB bound")
	}
	// Room freed by a refusal may go to another sender still waiting (it
	// then waits again, and is refused in turn), so the senders leave: what
	// they held comes back, and the node serves websockets again.
	for _, c := range senders {
		c.CloseNow()
	}
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "echo: again" {
		t.Fatalf("after the refusals: %d bytes, %v", len(msg), err)
	}
}
