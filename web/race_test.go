package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// fakePy stands in for the interpreter: its "apps" are Go functions that
// call the server's callbacks from their own goroutines, as Python threads
// and tasks do, so that the race detector sees every callback against
// ServeHTTP. Like pybridge, Call returns when ctx ends even though the
// "Python" side goes on.
type fakePy struct {
	s    *Server
	app  func(ctx context.Context, id uint64, path string) ([]byte, error)
	wg   sync.WaitGroup // the apps' goroutines
	done chan struct{}  // closed by the test: the apps stop
}

func (f *fakePy) CallOn(ctx context.Context, _ pybridge.Lane, module, fn string, args []byte) ([]byte, error) {
	return f.Call(ctx, module, fn, args)
}

func (f *fakePy) Call(ctx context.Context, module, fn string, args []byte) ([]byte, error) {
	var raw []cbor.RawMessage
	if err := cbor.Unmarshal(args, &raw); err != nil {
		return nil, err
	}
	var id uint64
	cbor.Unmarshal(raw[0], &id)
	scope, _ := decodeEnv(raw[2])
	path, _ := scope["PATH_INFO"].(string)
	if p, ok := scope["path"].(string); ok {
		path = p
	}
	return runApp(ctx, &f.wg, func() ([]byte, error) { return f.app(context.WithoutCancel(ctx), id, path) })
}

// cb calls the server's Go function name with [id, args...].
func (f *fakePy) cb(name string, id uint64, args ...any) ([]byte, error) {
	return callback(f.s, name, id, args...)
}

func newFake(t *testing.T, cfg Config, app func(f *fakePy, ctx context.Context, id uint64, path string) ([]byte, error)) (*fakePy, *httptest.Server) {
	t.Helper()
	cfg.App = "fake:app"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePy{s: s, done: make(chan struct{})}
	f.app = func(ctx context.Context, id uint64, path string) ([]byte, error) { return app(f, ctx, id, path) }
	s.py.Store(caller(f))
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		close(f.done)
		ts.CloseClientConnections()
		ts.Close()
		f.wg.Wait()
	})
	return f, ts
}

// A 504 while the app streams its response and reads its body: the app's
// writes and reads after it get errEnded and never touch the response.
func TestTimeoutDuringStreaming(t *testing.T) {
	var afterEnd atomic.Int64
	f, ts := newFake(t, Config{Timeout: 300 * time.Millisecond}, func(f *fakePy, ctx context.Context, id uint64, path string) ([]byte, error) {
		if _, err := f.cb("http_start", id, "200 OK", [][2]string{{"Content-Type", "text/plain"}}); err != nil {
			return nil, err
		}
		for {
			_, werr := f.cb("http_write", id, []byte("chunk\n"))
			_, rerr := f.cb("http_read", id, 10)
			if errors.Is(werr, errEnded) && errors.Is(rerr, errEnded) {
				afterEnd.Add(1)
				return nil, werr
			}
			select {
			case <-f.done:
				return nil, errors.New("test over")
			case <-time.After(time.Millisecond):
			}
		}
	})
	for range 5 {
		pr, pw := io.Pipe()
		go func() { // more than is read ahead, then a stall
			pw.Write([]byte(strings.Repeat("b", readAheadBytes+1000)))
			<-f.done
			pw.Close()
		}()
		resp, err := http.Post(ts.URL+"/stream", "text/plain", pr)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || err == nil || !strings.HasPrefix(string(body), "chunk\n") {
			t.Fatalf("got %d, %d bytes, %v: want a cut 200", resp.StatusCode, len(body), err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for afterEnd.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 5 apps saw their request end", afterEnd.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A 504 before the app answered: the client gets it, and the app's late
// answer is refused.
func TestTimeoutBeforeStart(t *testing.T) {
	late := make(chan error, 1)
	_, ts := newFake(t, Config{Timeout: 200 * time.Millisecond}, func(f *fakePy, ctx context.Context, id uint64, path string) ([]byte, error) {
		time.Sleep(400 * time.Millisecond)
		_, err := f.cb("http_start", id, "200 OK", [][2]string{})
		late <- err
		return nil, err
	})
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if err := <-late; !errors.Is(err, errEnded) {
		t.Fatalf("the late start: %v, want errEnded", err)
	}
}

// Send and receive on one websocket at once, and a close while a receive
// waits.
func TestWebSocketConcurrentSendReceive(t *testing.T) {
	const n = 200
	_, ts := newFake(t, Config{ASGI: true}, func(f *fakePy, ctx context.Context, id uint64, path string) ([]byte, error) {
		if _, err := f.cb("ws_accept", id, nil, [][2]string{}); err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // echo what comes in
			defer wg.Done()
			for {
				out, err := f.cb("ws_receive", id)
				var msg []any
				if err != nil || cbor.Unmarshal(out, &msg) != nil || msg[0] == "close" {
					return
				}
				f.cb("ws_send_many", id, [][]any{{nil, []byte("echo")}})
			}
		}()
		go func() { // and talk meanwhile: one at a time, then in batches
			defer wg.Done()
			for range n / 2 {
				f.cb("ws_send_many", id, [][]any{{"tick", nil}})
			}
			for i := n / 2; i < n; i += 10 {
				batch := make([][]any, 10)
				for j := range batch {
					batch[j] = []any{"tick", nil}
				}
				f.cb("ws_send_many", id, batch)
			}
			f.cb("ws_close", id, 1000, "bye") // while the receiver waits
		}()
		wg.Wait()
		return nil, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range n {
			if c.Write(ctx, websocket.MessageBinary, []byte("ping")) != nil {
				return
			}
		}
	}()
	ticks := 0
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure || ticks != n {
				t.Fatalf("after %d ticks: %v", ticks, err)
			}
			return
		}
		if string(msg) == "tick" {
			ticks++
		}
	}
}

// --timeout is kept by a periodic sweep, not a timer per request: a slow
// app's request gets its 504 no sooner than the timeout after it began and
// within a sweep period or so of it, while requests that answer in time,
// many of them during each sweep, are untouched.
func TestTimeoutSweep(t *testing.T) {
	const timeout = 300 * time.Millisecond
	_, ts := newFake(t, Config{Timeout: timeout}, func(f *fakePy, ctx context.Context, id uint64, path string) ([]byte, error) {
		if path == "/slow" {
			select {
			case <-f.done:
			case <-time.After(10 * time.Second):
			}
			return nil, errors.New("too late")
		}
		return h1Response("200 OK", nil, []byte("ok")), nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			resp, err := http.Get(ts.URL + "/slow")
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			took := time.Since(t0)
			if resp.StatusCode != http.StatusGatewayTimeout || took < timeout || took > 5*time.Second {
				errs <- fmt.Errorf("slow: %d after %v, want 504 after %v", resp.StatusCode, took, timeout)
			}
		}()
	}
	fast := time.Now().Add(2 * timeout)
	for time.Now().Before(fast) {
		resp, err := http.Get(ts.URL + "/fast")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("fast: %d %q", resp.StatusCode, body)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSweepEvery(t *testing.T) {
	for _, tc := range []struct{ timeout, want time.Duration }{
		{100 * time.Millisecond, 10 * time.Millisecond},
		{time.Second, 50 * time.Millisecond},
		{30 * time.Second, time.Second},
		{time.Hour, time.Second},
	} {
		if got := sweepEvery(tc.timeout); got != tc.want {
			t.Errorf("sweepEvery(%v) = %v, want %v", tc.timeout, got, tc.want)
		}
	}
}
