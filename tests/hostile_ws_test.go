package tests

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// wsOpen does a websocket handshake on a raw connection.
func wsOpen(t *testing.T, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 101 ") {
		conn.Close()
		t.Fatalf("handshake: %q %v", line, err)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	conn.SetReadDeadline(time.Time{})
	return conn, br
}

// wsFrame encodes a client frame (masked unless unmasked).
func wsFrame(opcode byte, payload []byte, unmasked bool) []byte {
	b := []byte{0x80 | opcode}
	if unmasked {
		return append(append(b, byte(len(payload))), payload...)
	}
	key := []byte{1, 2, 3, 4}
	b = append(append(b, 0x80|byte(len(payload))), key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// wsCloseCode reads server frames until a close frame and returns its code
// (skipping pings when skipPings), or -1 when the connection ends first.
func wsCloseCode(t *testing.T, conn net.Conn, br *bufio.Reader, within time.Duration) (code int, sawPing bool) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return -1, sawPing
		}
		n := int(h[1] & 0x7f)
		if n == 126 {
			var l [2]byte
			io.ReadFull(br, l[:])
			n = int(binary.BigEndian.Uint16(l[:]))
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return -1, sawPing
		}
		switch h[0] & 0x0f {
		case 0x9:
			sawPing = true
		case 0x8:
			if len(p) < 2 {
				return 1005, sawPing
			}
			return int(binary.BigEndian.Uint16(p)), sawPing
		}
	}
}

// Idle websockets do not take --limit-concurrency's slots; broken frames
// close with RFC 6455's codes and never reach the app as an exception;
// a client that does not answer pings is closed.
func TestWebSocketHostile(t *testing.T) {
	p := serveApp(t, "", "asgiapp:ws_app", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", webdir(),
		"--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5")
	addr := hostOf(p.base)
	t.Run("1100 idle websockets", func(t *testing.T) {
		p := serveApp(t, "", "asgiapp:ws_app", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", webdir())
		addr := hostOf(p.base)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 1100 {
			c, br := wsOpen(t, addr, "/ws")
			conns = append(conns, c)
			go io.Copy(io.Discard, br)
		}
		t0 := time.Now()
		if code, _, got := get(t, "GET", p.base+"/", nil); code != 200 && code != 201 || time.Since(t0) > 2*time.Second {
			t.Fatalf("HTTP beside 1100 websockets: %d %q in %v", code, got, time.Since(t0))
		}
	})
	for _, tc := range []struct {
		name  string
		frame []byte
		code  int
	}{
		{"invalid UTF-8 text", wsFrame(0x1, []byte{0xff, 0xfe, 'a'}, false), 1007},
		{"unmasked frame", wsFrame(0x1, []byte("hi"), true), 1002},
		{"reserved opcode", wsFrame(0x3, []byte("hi"), false), 1002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := wsOpen(t, addr, "/ws")
			defer c.Close()
			c.Write(tc.frame)
			if code, _ := wsCloseCode(t, c, br, 5*time.Second); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
	t.Run("unanswered pings", func(t *testing.T) {
		c, br := wsOpen(t, addr, "/ws")
		defer c.Close()
		code, sawPing := wsCloseCode(t, c, br, 5*time.Second)
		if !sawPing || code != 1011 {
			t.Fatalf("ping seen %v, close code %d: want a ping, then 1011", sawPing, code)
		}
	})
	t.Run("--ws-max", func(t *testing.T) {
		p := serveApp(t, "", "asgiapp:ws_app", "-k", "asgi", "-b", "127.0.0.1:0", "--pythonpath", webdir(), "--ws-max", "2")
		addr := hostOf(p.base)
		for range 2 {
			c, _ := wsOpen(t, addr, "/ws")
			defer c.Close()
		}
		got, _ := rawExchange(t, addr, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 5*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 503 ") {
			t.Fatalf("a third websocket under --ws-max 2: %q", firstLine(got))
		}
		if code, _, _ := get(t, "GET", p.base+"/", nil); code != 201 {
			t.Fatalf("HTTP beside a full --ws-max: %d", code)
		}
	})
	if strings.Contains(p.logs(), "ValueError") || strings.Contains(p.logs(), "app raised") {
		t.Fatalf("the app saw an exception:\n%s", p.logs())
	}
}
