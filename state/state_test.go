package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestStore(t *testing.T, cfg Config) (*Store, *fakeClock) {
	t.Helper()
	c := newClock()
	cfg.Now = c.Now
	return New(cfg), c
}

func mustSet(t *testing.T, s *Store, k string, v []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(k, v, ttl); err != nil {
		t.Fatalf("Set(%q): %v", k, err)
	}
}

func TestGetSetDelete(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	if _, ok := s.Get("a"); ok {
		t.Fatal("Get on empty store found a value")
	}
	src := []byte{0x01, 0x02}
	mustSet(t, s, "a", src, 0)
	src[0] = 0xff // Set must have copied
	if v, ok := s.Get("a"); !ok || !bytes.Equal(v, []byte{0x01, 0x02}) {
		t.Fatalf("Get(a) = %x, %v", v, ok)
	}
	mustSet(t, s, "a", []byte{0x03}, 0)
	if v, _ := s.Get("a"); !bytes.Equal(v, []byte{0x03}) {
		t.Fatalf("after replace Get(a) = %x", v)
	}
	mustSet(t, s, "empty", nil, 0)
	if v, ok := s.Get("empty"); !ok || len(v) != 0 {
		t.Fatalf("Get(empty) = %x, %v", v, ok)
	}
	if s.Len() != 2 || s.Bytes() != int64(len("a")+1+len("empty")) {
		t.Fatalf("Len=%d Bytes=%d", s.Len(), s.Bytes())
	}
	if !s.Delete("a") {
		t.Fatal("Delete(a) = false")
	}
	if s.Delete("a") {
		t.Fatal("second Delete(a) = true")
	}
	if _, ok := s.Get("a"); ok {
		t.Fatal("Get after Delete found a value")
	}
	if s.Len() != 1 || s.Bytes() != int64(len("empty")) {
		t.Fatalf("Len=%d Bytes=%d", s.Len(), s.Bytes())
	}
}

// cborHead builds a shortest CBOR integer head independently of cbor.go.
func cborHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= 0xff:
		return []byte{m | 24, byte(n)}
	case n <= 0xffff:
		return []byte{m | 25, byte(n >> 8), byte(n)}
	case n <= 0xffffffff:
		return []byte{m | 26, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	default:
		b := []byte{m | 27, 0, 0, 0, 0, 0, 0, 0, 0}
		for i := 0; i < 8; i++ {
			b[8-i] = byte(n >> (8 * i))
		}
		return b
	}
}

func TestIncr(t *testing.T) {
	maxU := cborHead(0, math.MaxUint64)
	tests := []struct {
		name    string
		initial []byte // nil = key absent
		delta   int64
		want    int64
		wantErr error
		wantVal []byte // stored bytes afterwards
	}{
		{"missing", nil, 5, 5, nil, []byte{0x05}},
		{"missing negative", nil, -1, -1, nil, []byte{0x20}},
		{"missing zero", nil, 0, 0, nil, []byte{0x00}},
		{"existing", []byte{0x07}, 3, 10, nil, []byte{0x0a}},
		{"negative delta", []byte{0x07}, -10, -3, nil, []byte{0x22}},
		{"negative stored", []byte{0x38, 0x63}, 1, -99, nil, []byte{0x38, 0x62}}, // -100 + 1
		{"cross 23", []byte{0x17}, 1, 24, nil, []byte{0x18, 0x18}},
		{"back below 24", []byte{0x18, 0x18}, -1, 23, nil, []byte{0x17}},
		{"cross 255", []byte{0x18, 0xff}, 1, 256, nil, []byte{0x19, 0x01, 0x00}},
		{"cross 65535", []byte{0x19, 0xff, 0xff}, 1, 65536, nil, []byte{0x1a, 0, 1, 0, 0}},
		{"cross 2^32", []byte{0x1a, 0xff, 0xff, 0xff, 0xff}, 1, 1 << 32, nil, []byte{0x1b, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"cross -24", []byte{0x37}, -1, -25, nil, []byte{0x38, 0x18}},
		{"cross -256", []byte{0x38, 0xff}, -1, -257, nil, []byte{0x39, 0x01, 0x00}},
		{"cross -65536", []byte{0x39, 0xff, 0xff}, -1, -65537, nil, []byte{0x3a, 0, 1, 0, 0}},
		{"cross -2^32", []byte{0x3a, 0xff, 0xff, 0xff, 0xff}, -1, -(1 << 32) - 1, nil, []byte{0x3b, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"shrink 2^32 to 0", []byte{0x1b, 0, 0, 0, 1, 0, 0, 0, 0}, -(1 << 32), 0, nil, []byte{0x00}},
		{"non-shortest head", []byte{0x1b, 0, 0, 0, 0, 0, 0, 0, 5}, 1, 6, nil, []byte{0x06}},
		{"non-shortest negative", []byte{0x39, 0x00, 0x04}, 0, -5, nil, []byte{0x24}},
		{"to MaxInt64", cborHead(0, math.MaxInt64-1), 1, math.MaxInt64, nil, cborHead(0, math.MaxInt64)},
		{"to MinInt64", cborHead(1, math.MaxInt64-1), -1, math.MinInt64, nil, cborHead(1, math.MaxInt64)},
		{"uint64 above MaxInt64 brought back", cborHead(0, 1<<63), -1, math.MaxInt64, nil, cborHead(0, math.MaxInt64)},
		{"overflow up", cborHead(0, math.MaxInt64), 1, 0, ErrOverflow, cborHead(0, math.MaxInt64)},
		{"overflow down", cborHead(1, math.MaxInt64), -1, 0, ErrOverflow, cborHead(1, math.MaxInt64)},
		{"overflow big delta", []byte{0x01}, math.MaxInt64, 0, ErrOverflow, []byte{0x01}},
		{"stored above MaxInt64", maxU, 0, 0, ErrOverflow, maxU},
		{"stored below MinInt64", cborHead(1, math.MaxUint64), 0, 0, ErrOverflow, cborHead(1, math.MaxUint64)},
		{"text string", []byte{0x61, 0x61}, 1, 0, ErrNotInteger, []byte{0x61, 0x61}},
		{"float", []byte{0xf9, 0x3c, 0x00}, 1, 0, ErrNotInteger, []byte{0xf9, 0x3c, 0x00}},
		{"empty value", []byte{}, 1, 0, ErrNotInteger, []byte{}},
		{"trailing bytes", []byte{0x01, 0x02}, 1, 0, ErrNotInteger, []byte{0x01, 0x02}},
		{"truncated head", []byte{0x19, 0x01}, 1, 0, ErrNotInteger, []byte{0x19, 0x01}},
		{"reserved ai", []byte{0x1c}, 1, 0, ErrNotInteger, []byte{0x1c}},
		{"indefinite", []byte{0x1f}, 1, 0, ErrNotInteger, []byte{0x1f}},
		{"tagged int", []byte{0xc1, 0x01}, 1, 0, ErrNotInteger, []byte{0xc1, 0x01}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			if tc.initial != nil {
				mustSet(t, s, "k", tc.initial, 0)
			}
			got, err := s.Incr("k", tc.delta)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("Incr = %d, want %d", got, tc.want)
			}
			v, _ := s.Get("k")
			if !bytes.Equal(v, tc.wantVal) {
				t.Fatalf("stored %x, want %x", v, tc.wantVal)
			}
			if want := int64(1 + len(tc.wantVal)); s.Bytes() != want || s.Len() != 1 {
				t.Fatalf("Len=%d Bytes=%d, want 1/%d", s.Len(), s.Bytes(), want)
			}
		})
	}
}

func TestCBORRoundTrip(t *testing.T) {
	for _, v := range []int64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxInt64,
		-1, -24, -25, -256, -257, -65536, -65537, -(1 << 32), -(1 << 32) - 1, math.MinInt64} {
		b := encodeCBORInt(v)
		hi, lo, ok := decodeCBORInt(b)
		got, fits := addInt128ToInt64(hi, lo, 0)
		if !ok || !fits || got != v || cap(b) != len(b) {
			t.Errorf("round trip %d: %x -> %d ok=%v fits=%v", v, b, got, ok, fits)
		}
	}
}

func TestIncrKeepsTTL(t *testing.T) {
	s, c := newTestStore(t, Config{})
	mustSet(t, s, "k", []byte{0x01}, 10*time.Second)
	c.Advance(5 * time.Second)
	if n, err := s.Incr("k", 1); err != nil || n != 2 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	c.Advance(4 * time.Second)
	if v, ok := s.Get("k"); !ok || !bytes.Equal(v, []byte{0x02}) {
		t.Fatalf("before expiry Get = %x, %v", v, ok)
	}
	c.Advance(time.Second)
	if _, ok := s.Get("k"); ok {
		t.Fatal("TTL not kept by Incr")
	}
	// Incr on an expired key counts from 0 with no expiry.
	mustSet(t, s, "e", []byte{0x09}, time.Second)
	c.Advance(time.Second)
	if n, err := s.Incr("e", 1); err != nil || n != 1 {
		t.Fatalf("Incr on expired = %d, %v", n, err)
	}
	c.Advance(time.Hour)
	if _, ok := s.Get("e"); !ok {
		t.Fatal("key recreated by Incr after expiry should not expire")
	}
	if s.Len() != 1 || s.Bytes() != 2 {
		t.Fatalf("Len=%d Bytes=%d", s.Len(), s.Bytes())
	}
}

func TestTTL(t *testing.T) {
	s, c := newTestStore(t, Config{})
	mustSet(t, s, "short", []byte{1}, time.Second)
	mustSet(t, s, "long", []byte{2}, time.Minute)
	mustSet(t, s, "forever", []byte{3}, 0)
	mustSet(t, s, "negative", []byte{4}, -time.Second) // no expiry
	steps := []struct {
		advance time.Duration
		live    []string
		dead    []string
	}{
		{0, []string{"short", "long", "forever", "negative"}, nil},
		{999 * time.Millisecond, []string{"short", "long"}, nil},
		{time.Millisecond, []string{"long", "forever"}, []string{"short"}},
		{time.Minute, []string{"forever", "negative"}, []string{"long"}},
	}
	for i, st := range steps {
		c.Advance(st.advance)
		for _, k := range st.live {
			if _, ok := s.Get(k); !ok {
				t.Errorf("step %d: %q missing", i, k)
			}
		}
		for _, k := range st.dead {
			if _, ok := s.Get(k); ok {
				t.Errorf("step %d: %q still live", i, k)
			}
		}
	}
	if s.Len() != 2 {
		t.Fatalf("Len = %d after touching expired keys", s.Len())
	}
	// Delete of an expired key reports false but releases it.
	mustSet(t, s, "x", []byte{1}, time.Second)
	c.Advance(time.Second)
	if s.Delete("x") {
		t.Fatal("Delete of expired key = true")
	}
	if s.Len() != 2 {
		t.Fatalf("Len = %d", s.Len())
	}
	// Set replaces an expired entry and clears its TTL.
	mustSet(t, s, "y", []byte{1}, time.Second)
	mustSet(t, s, "y", []byte{2}, 0)
	c.Advance(time.Hour)
	if _, ok := s.Get("y"); !ok {
		t.Fatal("Set without ttl did not clear the TTL")
	}
}

func TestKeys(t *testing.T) {
	s, c := newTestStore(t, Config{})
	for _, k := range []string{"user:3", "user:1", "job:a", "user:2", "userx", "u"} {
		mustSet(t, s, k, []byte{0}, 0)
	}
	mustSet(t, s, "user:0", []byte{0}, time.Second)
	c.Advance(time.Second)
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"job:a", "u", "user:1", "user:2", "user:3", "userx"}},
		{"user:", []string{"user:1", "user:2", "user:3"}},
		{"user", []string{"user:1", "user:2", "user:3", "userx"}},
		{"job:a", []string{"job:a"}},
		{"nope", nil},
	}
	for _, tc := range tests {
		if got := s.Keys(tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("Keys(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	if s.Len() != 6 {
		t.Fatalf("Len = %d: Keys should release expired entries", s.Len())
	}
}

func TestLimits(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		s, _ := newTestStore(t, Config{MaxEntries: 3})
		for i := range 3 {
			mustSet(t, s, fmt.Sprint("k", i), []byte{1}, 0)
		}
		err := s.Set("k3", []byte{1}, 0)
		if !errors.Is(err, ErrFull) {
			t.Fatalf("4th Set err = %v", err)
		}
		if _, err := s.Incr("k4", 1); !errors.Is(err, ErrFull) {
			t.Fatalf("Incr new key err = %v", err)
		}
		t.Logf("error text: %v", err)
		mustSet(t, s, "k0", []byte{1, 2, 3}, 0) // replacement needs no new entry
		if _, err := s.Incr("k1", 1); err != nil {
			t.Fatalf("Incr existing at entry limit: %v", err)
		}
		if s.Len() != 3 {
			t.Fatalf("Len = %d", s.Len())
		}
		s.Delete("k2")
		mustSet(t, s, "k3", []byte{1}, 0)
		if s.Len() != 3 {
			t.Fatalf("Len = %d", s.Len())
		}
	})
	t.Run("bytes", func(t *testing.T) {
		s, _ := newTestStore(t, Config{MaxBytes: 10})
		mustSet(t, s, "a", make([]byte, 4), 0) // 5
		mustSet(t, s, "b", make([]byte, 4), 0) // 10
		if err := s.Set("c", nil, 0); !errors.Is(err, ErrFull) {
			t.Fatalf("over bytes err = %v", err)
		}
		if s.Len() != 2 || s.Bytes() != 10 {
			t.Fatalf("failed Set changed totals: Len=%d Bytes=%d", s.Len(), s.Bytes())
		}
		if err := s.Set("a", make([]byte, 5), 0); !errors.Is(err, ErrFull) {
			t.Fatalf("growing replacement err = %v", err)
		}
		mustSet(t, s, "a", make([]byte, 2), 0) // shrink: 3+5 = 8
		if s.Bytes() != 8 {
			t.Fatalf("Bytes = %d, want 8", s.Bytes())
		}
		mustSet(t, s, "a", make([]byte, 4), 0) // grow back to 10
		if v, _ := s.Get("a"); len(v) != 4 {
			t.Fatalf("replacement not stored")
		}
		// Incr growth is accounted too: "c" at 0 needs 2 bytes.
		if !s.Delete("b") || s.Bytes() != 5 {
			t.Fatalf("Delete did not release: Bytes = %d", s.Bytes())
		}
		mustSet(t, s, "c", []byte{0x17}, 0)       // 7
		if _, err := s.Incr("c", 1); err != nil { // 0x18 0x18: 8
			t.Fatal(err)
		}
		mustSet(t, s, "d", []byte{0}, 0) // 10
		if _, err := s.Incr("c", 1000); !errors.Is(err, ErrFull) {
			t.Fatalf("Incr growth past MaxBytes err = %v", err)
		}
		if v, _ := s.Get("c"); !bytes.Equal(v, []byte{0x18, 0x18}) {
			t.Fatalf("failed Incr changed value: %x", v)
		}
		if s.Bytes() != 10 {
			t.Fatalf("Bytes = %d", s.Bytes())
		}
	})
	t.Run("expired counts until released", func(t *testing.T) {
		s, c := newTestStore(t, Config{MaxEntries: 1})
		mustSet(t, s, "a", []byte{1}, time.Second)
		c.Advance(time.Second)
		if err := s.Set("b", []byte{1}, 0); !errors.Is(err, ErrFull) {
			t.Fatalf("expired entry should still count: %v", err)
		}
		s.Sweep()
		mustSet(t, s, "b", []byte{1}, 0)
	})
}

func TestSweep(t *testing.T) {
	s, c := newTestStore(t, Config{})
	for i := range 100 {
		ttl := time.Duration(0)
		if i%2 == 0 {
			ttl = time.Second
		}
		mustSet(t, s, fmt.Sprintf("k%03d", i), []byte{1, 2}, ttl)
	}
	s.Sweep()
	if s.Len() != 100 {
		t.Fatalf("Sweep removed live entries: Len = %d", s.Len())
	}
	c.Advance(time.Second)
	if s.Len() != 100 || s.Bytes() != 100*6 {
		t.Fatalf("expired entries released before sweep: Len=%d Bytes=%d", s.Len(), s.Bytes())
	}
	s.Sweep()
	if s.Len() != 50 || s.Bytes() != 50*6 {
		t.Fatalf("after Sweep Len=%d Bytes=%d", s.Len(), s.Bytes())
	}
	if n := len(s.Keys("")); n != 50 {
		t.Fatalf("Keys = %d", n)
	}
}

func TestRun(t *testing.T) {
	s, c := newTestStore(t, Config{})
	mustSet(t, s, "k", []byte{1}, time.Second)
	c.Advance(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestConcurrent(t *testing.T) {
	const (
		workers  = 16
		iters    = 3000
		counters = 8
	)
	s := New(Config{})
	var want [counters]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iters {
				c := (w + i) % counters
				d := int64(i%7 - 3)
				if _, err := s.Incr(fmt.Sprint("ctr/", c), d); err != nil {
					t.Error(err)
					return
				}
				want[c].Add(d)
				k := fmt.Sprint("tmp/", w, "/", i%10)
				switch i % 5 {
				case 0:
					if err := s.Set(k, []byte{byte(i)}, time.Duration(i%2)*time.Hour); err != nil {
						t.Error(err)
						return
					}
				case 1:
					s.Get(k)
					s.Get(fmt.Sprint("ctr/", c))
				case 2:
					s.Delete(k)
				case 3:
					s.Keys("tmp/")
				case 4:
					_, _ = s.Incr(k, 1) // may hit a non-integer: fine
				}
			}
		}()
	}
	wg.Wait()
	for c := range counters {
		v, ok := s.Get(fmt.Sprint("ctr/", c))
		if !ok {
			t.Fatalf("counter %d missing", c)
		}
		hi, lo, ok := decodeCBORInt(v)
		got, fits := addInt128ToInt64(hi, lo, 0)
		if !ok || !fits || got != want[c].Load() {
			t.Errorf("counter %d = %d (%x), want %d", c, got, v, want[c].Load())
		}
	}
	// Totals must match the contents exactly.
	var n, b int64
	for _, k := range s.Keys("") {
		v, _ := s.Get(k)
		n++
		b += int64(len(k) + len(v))
	}
	if int64(s.Len()) != n || s.Bytes() != b {
		t.Fatalf("Len=%d Bytes=%d, contents %d/%d", s.Len(), s.Bytes(), n, b)
	}
}

func TestConcurrentLimits(t *testing.T) {
	s := New(Config{MaxEntries: 100})
	var wg sync.WaitGroup
	var ok atomic.Int64
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if s.Set(fmt.Sprint(w, "/", i), []byte{1}, 0) == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 100 || s.Len() != 100 {
		t.Fatalf("accepted %d, Len %d; want exactly 100", ok.Load(), s.Len())
	}
}

func TestGetNoAlloc(t *testing.T) {
	s := New(Config{})
	mustSet(t, s, "key", []byte{0x05}, time.Hour)
	if n := testing.AllocsPerRun(100, func() { s.Get("key") }); n != 0 {
		t.Fatalf("Get allocs = %v", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Incr("key", 1) }); n > 1 {
		t.Fatalf("Incr allocs = %v", n)
	}
}

func BenchmarkGet(b *testing.B) {
	s := New(Config{})
	_ = s.Set("some:key", []byte{0x18, 0x2a}, 0)
	b.ReportAllocs()
	for b.Loop() {
		s.Get("some:key")
	}
}

func BenchmarkIncr(b *testing.B) {
	s := New(Config{})
	_ = s.Set("some:counter", []byte{0x00}, 0)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.Incr("some:counter", 1)
	}
}

func BenchmarkIncrParallel(b *testing.B) {
	s := New(Config{})
	keys := make([]string, 256)
	for i := range keys {
		keys[i] = fmt.Sprint("counter:", i)
		_ = s.Set(keys[i], []byte{0x00}, 0)
	}
	var id atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(id.Add(1)) * 31
		for pb.Next() {
			_, _ = s.Incr(keys[i&255], 1)
			i++
		}
	})
}

func BenchmarkSet(b *testing.B) {
	s := New(Config{})
	v := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Set("some:key", v, 0)
	}
}

// TestKeysAreCopied: callers may pass keys that are views of memory they reuse
// afterwards (pybridge passes views of Python strings).
func TestKeysAreCopied(t *testing.T) {
	s := New(Config{})
	buf := []byte("key-one")
	view := unsafe.String(&buf[0], len(buf))
	if err := s.Set(view, []byte{0x01}, 0); err != nil {
		t.Fatal(err)
	}
	copy(buf, "KEY-TWO")
	if _, err := s.Incr(view, 1); err != nil { // inserts "KEY-TWO" through the same view
		t.Fatal(err)
	}
	copy(buf, "garbage")
	if got := s.Keys(""); len(got) != 2 || got[0] != "KEY-TWO" || got[1] != "key-one" {
		t.Fatalf("keys %q", got)
	}
}
