package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

func TestNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"web@10.0.0.1", true},
		{"gpu-1@host.example.com", true},
		{"a_b@h", true},
		{"web", false},
		{"@host", false},
		{"web@", false},
		{"we b@host", false},
		{"a@b@c", false},
	}
	for _, tt := range tests {
		if _, err := LongName(tt.name); (err == nil) != tt.ok {
			t.Errorf("LongName(%q) err = %v, want ok=%v", tt.name, err, tt.ok)
		} else if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("LongName(%q): %v is not ErrBadName", tt.name, err)
		}
	}
	if n, err := ShortName("web"); err != nil || !strings.HasPrefix(n, "web@") || strings.Contains(Host(n), ".") {
		t.Errorf("ShortName(web) = %q, %v", n, err)
	}
	seen := map[string]string{}
	for _, n := range []string{"a@1.2.3.4", "a@1~2e2.3.4", "a@1-2.3.4", "a@h", "a_b@h", "a-b@h"} {
		e := escape(n)
		if strings.ContainsAny(e, ".*> ") {
			t.Errorf("escape(%q) = %q is not one subject token", n, e)
		}
		if o, dup := seen[e]; dup {
			t.Errorf("escape(%q) = escape(%q) = %q", n, o, e)
		}
		seen[e] = n
	}
}

type echoHandler struct{}

func (echoHandler) Call(ctx context.Context, module, function string, args []byte) ([]byte, error) {
	switch function {
	case "echo":
		return args, nil
	case "sleep":
		select {
		case <-time.After(time.Hour):
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	case "raise":
		return nil, &RemoteError{Type: "ValueError", Message: "bad", Traceback: "tb"}
	default:
		return nil, BadRPC("no function " + function)
	}
}

func startBus(t *testing.T, name, cookie string, join ...string) *Bus {
	t.Helper()
	b, err := Start(Config{Name: name, Cookie: cookie, ClusterHost: "127.0.0.1", Join: join,
		Handler: echoHandler{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func waitNodes(t *testing.T, b *Bus, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if fmt.Sprint(b.Nodes(Visible)) == fmt.Sprint(want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s sees %v, want %v", b.Name(), b.Nodes(Visible), want)
}

func TestClusterInProcess(t *testing.T) {
	a := startBus(t, "a@127.0.0.1", "secret")
	b := startBus(t, "b@127.0.0.1", "secret", a.ClusterAddr())
	c := startBus(t, "c@127.0.0.1", "secret", b.ClusterAddr())
	waitNodes(t, a, "b@127.0.0.1", "c@127.0.0.1")
	waitNodes(t, c, "a@127.0.0.1", "b@127.0.0.1")

	args, _ := cbor.Marshal([]any{"hi", 1})
	ctx := context.Background()
	for _, from := range []*Bus{a, b, c} {
		for _, to := range []string{"a@127.0.0.1", "b@127.0.0.1", "c@127.0.0.1"} {
			v, err := from.Call(ctx, to, "m", "echo", args)
			if err != nil || string(v) != string(args) {
				t.Fatalf("%s -> %s: %x, %v", from.Name(), to, v, err)
			}
		}
	}

	var re *RemoteError
	if _, err := a.Call(ctx, "b@127.0.0.1", "m", "raise", nil); !errors.As(err, &re) || re.Node != "b@127.0.0.1" || re.Type != "ValueError" {
		t.Fatalf("remote error: %v", err)
	}
	if _, err := a.Call(ctx, "b@127.0.0.1", "m", "nope", nil); !errors.Is(err, ErrBadRPC) {
		t.Fatalf("bad rpc: %v", err)
	}
	if _, err := a.Call(ctx, "nobody@127.0.0.1", "m", "echo", nil); !errors.Is(err, ErrNodeDown) {
		t.Fatalf("unknown node: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := a.Call(tctx, "b@127.0.0.1", "m", "sleep", nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("timeout: %v", err)
	}
	big := make([]byte, DefaultMaxPayload+1)
	bigArgs, _ := cbor.Marshal([]any{big})
	if _, err := a.Call(ctx, "b@127.0.0.1", "m", "echo", bigArgs); !errors.Is(err, ErrPayloadTooLarge) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("payload: %v", err)
	}
	if !a.Ping(ctx, "c@127.0.0.1") || a.Ping(ctx, "zz@127.0.0.1") {
		t.Fatal("ping")
	}

	// A node that leaves is seen down at once, and calls waiting on it end.
	var mu sync.Mutex
	var events []Event
	stop := a.Watch(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := a.Call(ctx, "c@127.0.0.1", "m", "sleep", nil)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNodeDown) {
			t.Fatalf("in-flight call: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("in-flight call to a departed node did not end")
	}
	waitNodes(t, a, "b@127.0.0.1")
	// Watchers are called on their own goroutine, so the event may trail Nodes().
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		ok := len(events) > 0 && events[len(events)-1].Kind == "nodedown" && events[len(events)-1].Node == "c@127.0.0.1"
		got := fmt.Sprint(events)
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %s", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDuplicateNameRefused(t *testing.T) {
	a := startBus(t, "dup@127.0.0.1", "secret")
	_, err := Start(Config{Name: "dup@127.0.0.1", Cookie: "secret", ClusterHost: "127.0.0.1",
		Join: []string{a.ClusterAddr()}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("got %v", err)
	}
}

func TestWrongCookieRefused(t *testing.T) {
	a := startBus(t, "x@127.0.0.1", "right")
	_, err := Start(Config{Name: "y@127.0.0.1", Cookie: "wrong", ClusterHost: "127.0.0.1",
		Join: []string{a.ClusterAddr()}, JoinTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "cookie") {
		t.Fatalf("got %v", err)
	}
	if len(a.Nodes(Connected)) != 0 {
		t.Fatalf("a sees %v", a.Nodes(Connected))
	}
}
