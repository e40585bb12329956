package sharedstate

import (
	"errors"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/hornbeam-go/hornbeam/state"
)

func serve(t *testing.T, cfg state.Config) (*Client, net.Listener) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go Serve(ln, state.New(cfg), state.NewCache(state.CacheConfig{MaxEntries: 2}))
	t.Cleanup(func() { ln.Close() })
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ln
}

func TestClient(t *testing.T) {
	c, _ := serve(t, state.Config{MaxEntries: 3})
	if _, ok, err := c.Get("a"); ok || err != nil {
		t.Fatalf("get missing: %v %v", ok, err)
	}
	if err := c.Set("a", []byte{0x01}, 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get("a"); !ok || err != nil || string(v) != "\x01" {
		t.Fatalf("get: %x %v %v", v, ok, err)
	}
	if v, err := c.Incr("a", 41); v != 42 || err != nil {
		t.Fatalf("incr: %d %v", v, err)
	}
	c.Set("s", []byte{0x61, 'x'}, 0)
	tests := []struct {
		key   string
		delta int64
		want  error
	}{
		{"s", 1, state.ErrNotInteger},
		{"a", 1<<63 - 1, state.ErrOverflow},
		{"b", 1, nil},
		{"c", 1, state.ErrFull},
	}
	for _, tt := range tests {
		if _, err := c.Incr(tt.key, tt.delta); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Incr(%q, %d) = %v, want %v", tt.key, tt.delta, err, tt.want)
		}
	}
	keys, err := c.Keys("")
	slices.Sort(keys)
	if err != nil || !slices.Equal(keys, []string{"a", "b", "s"}) {
		t.Fatalf("keys: %v %v", keys, err)
	}
	if ok, err := c.Delete("a"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, _ := c.Delete("a"); ok {
		t.Fatal("deleted twice")
	}
}

func TestCache(t *testing.T) {
	c, _ := serve(t, state.Config{})
	if _, ok, err := c.CacheGet("ml", "a"); ok || err != nil {
		t.Fatalf("empty cache: %v %v", ok, err)
	}
	for _, k := range []string{"a", "b", "c"} { // two fit: a is evicted
		if err := c.CachePut("ml", k, []byte("v"+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok, err := c.CacheGet("ml", "c"); !ok || err != nil || string(v) != "vc" {
		t.Fatalf("get c: %q %v %v", v, ok, err)
	}
	st, err := c.CacheStats()
	if err != nil || st.Prefixes["ml"].Hits != 1 || st.Prefixes["ml"].Misses != 1 || st.Prefixes["ml"].Evictions != 1 || st.Total.Size != 2 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	if err := c.CacheClear(""); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.CacheStats(); st.Total.Size != 0 {
		t.Fatalf("after clear: %+v", st)
	}
}

func TestConcurrentIncr(t *testing.T) {
	c, _ := serve(t, state.Config{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				if _, err := c.Incr("n", 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v, _ := c.Incr("n", 0); v != 4000 {
		t.Fatalf("n = %d, want 4000", v)
	}
}

func TestServerGone(t *testing.T) {
	c, ln := serve(t, state.Config{})
	ln.Close()
	c.Close() // drop pooled connections: the next call dials
	if _, _, err := c.Get("a"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("get after close: %v", err)
	}
}

// BenchmarkIncr is one worker's state_incr round trip to its node.
func BenchmarkIncr(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go Serve(ln, state.New(state.Config{}), state.NewCache(state.CacheConfig{}))
	c, err := Dial(path)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for b.Loop() {
		if _, err := c.Incr("n", 1); err != nil {
			b.Fatal(err)
		}
	}
}
