package state

import (
	"errors"
	"testing"
	"time"
)

func TestCacheLRU(t *testing.T) {
	c := NewCache(CacheConfig{MaxEntries: 3})
	for _, k := range []string{"a", "b", "c"} {
		c.Put("p", k, []byte(k), 0)
	}
	c.Get("p", "a") // a is now the most recent: b goes first
	c.Put("q", "d", []byte("d"), 0)
	tests := []struct {
		prefix, key string
		hit         bool
	}{
		{"p", "a", true}, {"p", "b", false}, {"p", "c", true}, {"q", "d", true}, {"q", "a", false},
	}
	for _, tt := range tests {
		v, ok := c.Get(tt.prefix, tt.key)
		if ok != tt.hit || (ok && string(v) != tt.key) {
			t.Errorf("Get(%s, %s) = %q, %v; want hit=%v", tt.prefix, tt.key, v, ok, tt.hit)
		}
	}
	st := c.Stats()
	p, q := st.Prefixes["p"], st.Prefixes["q"]
	if p.Hits != 3 || p.Misses != 1 || p.Evictions != 1 || p.Size != 2 || q.Hits != 1 || q.Misses != 1 || q.Size != 1 {
		t.Fatalf("stats: %+v", st)
	}
	if st.Total.Hits != 4 || st.Total.Size != 3 {
		t.Fatalf("total: %+v", st.Total)
	}
	c.Clear("p")
	if st := c.Stats(); st.Total.Size != 1 || st.Prefixes["p"].Size != 0 {
		t.Fatalf("after Clear(p): %+v", st)
	}
}

func TestCacheBytesAndTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewCache(CacheConfig{MaxBytes: 1000, Now: func() time.Time { return now }})
	big := make([]byte, 600)
	c.Put("p", "x", big, 0)
	c.Put("p", "y", big, 0) // x is evicted for room
	if _, ok := c.Get("p", "x"); ok {
		t.Fatal("x survived past the byte bound")
	}
	if err := c.Put("p", "z", make([]byte, 2000), 0); !errors.Is(err, ErrFull) {
		t.Fatalf("a value bigger than the cache: %v", err)
	}
	c.Put("p", "t", []byte("v"), time.Second)
	now = now.Add(2 * time.Second)
	if _, ok := c.Get("p", "t"); ok {
		t.Fatal("expired entry returned")
	}
	if st := c.Stats(); st.Total.Bytes > 1000 {
		t.Fatalf("bytes %d over the bound", st.Total.Bytes)
	}
}
