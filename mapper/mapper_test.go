package mapper

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ready(t *testing.T, n *Node) {
	t.Helper()
	select {
	case <-n.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not registered in 10 s")
	}
}

// ask sends raw to the mapper and returns what it answers before closing.
func ask(t *testing.T, port int, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	b, _ := io.ReadAll(c)
	return string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRegisterResolveAndTakeOver(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	port := freePort(t)
	a := Register("a@127.0.0.1", 9101, port, log)
	ready(t, a)
	b := Register("b@127.0.0.1", 9102, port, log)
	defer b.Close()
	ready(t, b)
	ctx := context.Background()
	for name, want := range map[string]string{"a@127.0.0.1": "127.0.0.1:9101", "b@127.0.0.1": "127.0.0.1:9102"} {
		if got, err := Resolve(ctx, name, port); err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %s", name, got, err, want)
		}
	}
	if _, err := Resolve(ctx, "c@127.0.0.1", port); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown name: %v", err)
	}
	a.Close() // a held the port: b takes it over
	deadline := time.Now().Add(10 * time.Second)
	for {
		names, err := Names(ctx, "127.0.0.1", port)
		if err == nil && len(names) == 1 && names[0] == (Entry{"b", 9102}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the holder left: %v, %v", names, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHostileRequests(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	port := freePort(t)
	a := Register("a", 9101, port, log)
	defer a.Close()
	ready(t, a)
	for _, c := range []struct{ name, send, want string }{
		{"unknown", "HELLO\n", "ERR unknown request\n"},
		{"too long", strings.Repeat("x", 4096) + "\n", ""},
		{"duplicate", "REGISTER a 9999\n", "ERR the name a is registered already\n"},
		{"bad port", "REGISTER z 70000\n", "ERR bad name or port\n"},
		{"bad name", "REGISTER a/b 9000\n", "ERR bad name or port\n"},
		{"names", "NAMES\n", "name a at port 9101\n"},
		{"port", "PORT a\n", "PORT 9101\n"},
		{"none", "PORT zz\n", "NONE\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ask(t, port, c.send); got != c.want {
				t.Errorf("%q -> %q, want %q", c.send, got, c.want)
			}
		})
	}
	// A registration lasts as long as its connection.
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "REGISTER tmp 9200\n")
	if l, _ := bufio.NewReader(conn).ReadString('\n'); l != "OK\n" {
		t.Fatalf("REGISTER: %q", l)
	}
	if got, _ := Resolve(context.Background(), "tmp@127.0.0.1", port); got != "127.0.0.1:9200" {
		t.Errorf("tmp: %q", got)
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := Resolve(context.Background(), "tmp@127.0.0.1", port); errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed registration stayed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
