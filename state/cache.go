package state

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

// CacheConfig sets the bounds of a Cache.
type CacheConfig struct {
	MaxEntries int              // 0 = default 100,000
	MaxBytes   int64            // bytes of keys+values; 0 = default 256 MiB
	Now        func() time.Time // for tests; nil = time.Now
}

// Cache is the node's bounded LRU cache of inference results
// (hornbeam_ml.cached_inference): unlike a Store it never refuses a write, it
// evicts the least recently used entries instead, and it keeps hit, miss and
// eviction counts per prefix.
type Cache struct {
	mu    sync.Mutex
	cfg   CacheConfig
	lru   *list.List // front = most recently used
	index map[string]*list.Element
	bytes int64
	stats map[string]*PrefixStats
}

type cacheEntry struct {
	key, prefix string
	val         []byte
	exp         int64 // unix nanos; 0 = none
}

// PrefixStats counts one prefix's use of the cache (or all of it).
type PrefixStats struct {
	Hits      int64 `cbor:"hits"`
	Misses    int64 `cbor:"misses"`
	Evictions int64 `cbor:"evictions"`
	Size      int64 `cbor:"size"`  // entries now
	Bytes     int64 `cbor:"bytes"` // bytes of their keys and values
}

// CacheStats is a snapshot of a Cache's counters.
type CacheStats struct {
	Total      PrefixStats            `cbor:"total"`
	Prefixes   map[string]PrefixStats `cbor:"prefixes"`
	MaxEntries int                    `cbor:"max_entries"`
	MaxBytes   int64                  `cbor:"max_bytes"`
}

const (
	defaultCacheEntries = 100_000
	defaultCacheBytes   = 256 << 20
	cacheEntryOverhead  = 96 // list element, map slot and entry header, roughly
)

// NewCache makes an empty Cache.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = defaultCacheEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = defaultCacheBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, lru: list.New(), index: map[string]*list.Element{}, stats: map[string]*PrefixStats{}}
}

func (c *Cache) prefixStats(p string) *PrefixStats {
	s := c.stats[p]
	if s == nil {
		s = &PrefixStats{}
		c.stats[p] = s
	}
	return s
}

func cacheSize(key string, v []byte) int64 { return int64(len(key)+len(v)) + cacheEntryOverhead }

// Get returns the value cached under prefix and key, counting a hit or a miss.
// The slice is shared: callers must not modify it.
func (c *Cache) Get(prefix, key string) ([]byte, bool) {
	full := prefix + ":" + key
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.prefixStats(prefix)
	el, ok := c.index[full]
	if ok {
		e := el.Value.(*cacheEntry)
		if e.exp != 0 && c.cfg.Now().UnixNano() >= e.exp {
			c.remove(el)
			ok = false
		} else {
			c.lru.MoveToFront(el)
			st.Hits++
			return e.val, true
		}
	}
	st.Misses++
	return nil, false
}

// Put caches a copy of value under prefix and key (ttl <= 0: until evicted),
// evicting least recently used entries to stay within the bounds. A value
// larger than the whole cache is refused with ErrFull.
func (c *Cache) Put(prefix, key string, value []byte, ttl time.Duration) error {
	full := prefix + ":" + key
	size := cacheSize(full, value)
	if size > c.cfg.MaxBytes {
		return fmt.Errorf("%w: a %d-byte value does not fit a %d-byte cache", ErrFull, len(value), c.cfg.MaxBytes)
	}
	e := &cacheEntry{key: full, prefix: prefix, val: append([]byte(nil), value...)}
	if ttl > 0 {
		e.exp = c.cfg.Now().Add(ttl).UnixNano()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[full]; ok {
		c.remove(el)
	}
	for c.lru.Len() > 0 && (c.lru.Len()+1 > c.cfg.MaxEntries || c.bytes+size > c.cfg.MaxBytes) {
		old := c.lru.Back()
		c.prefixStats(old.Value.(*cacheEntry).prefix).Evictions++
		c.remove(old)
	}
	c.index[full] = c.lru.PushFront(e)
	c.bytes += size
	st := c.prefixStats(prefix)
	st.Size++
	st.Bytes += size
	return nil
}

func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.index, e.key)
	size := cacheSize(e.key, e.val)
	c.bytes -= size
	st := c.prefixStats(e.prefix)
	st.Size--
	st.Bytes -= size
}

// Clear drops the entries of prefix ("" = every entry) and their counters.
func (c *Cache) Clear(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*cacheEntry); prefix == "" || e.prefix == prefix {
			c.remove(el)
		}
		el = next
	}
	if prefix == "" {
		c.stats = map[string]*PrefixStats{}
	} else {
		delete(c.stats, prefix)
	}
}

// Stats returns the counters, per prefix and in total.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := CacheStats{Prefixes: map[string]PrefixStats{}, MaxEntries: c.cfg.MaxEntries, MaxBytes: c.cfg.MaxBytes}
	for p, s := range c.stats {
		out.Prefixes[p] = *s
		out.Total.Hits += s.Hits
		out.Total.Misses += s.Misses
		out.Total.Evictions += s.Evictions
		out.Total.Size += s.Size
		out.Total.Bytes += s.Bytes
	}
	return out
}
