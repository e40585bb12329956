// Package state is the node-wide, ETS-like key/value store shared by every
// Python thread (and later every worker process) of a node; values are opaque
// CBOR-encoded bytes.
package state

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets the limits of a Store.
type Config struct {
	MaxEntries int              // 0 = default 1_000_000
	MaxBytes   int64            // bytes of keys+values; 0 = default 1 GiB
	Now        func() time.Time // for tests; nil = time.Now
}

const (
	defaultMaxEntries = 1_000_000
	defaultMaxBytes   = 1 << 30
	defaultSweepEvery = time.Second
	numShards         = 64 // power of two
)

var (
	// ErrNotInteger is returned by Incr when the stored value is not a plain
	// CBOR integer (major type 0 or 1).
	ErrNotInteger = errors.New("state: value is not an integer")
	// ErrOverflow is returned by Incr when the result does not fit in an int64.
	ErrOverflow = errors.New("state: integer overflow")
	// ErrFull is returned (wrapped, naming the limit) when a write would take
	// the store past MaxEntries or MaxBytes.
	ErrFull = errors.New("state: store is full")
)

type entry struct {
	val []byte // immutable once stored; cap == len
	exp int64  // expiry in Unix nanoseconds; 0 = never
}

func (e *entry) expired(now int64) bool { return e.exp != 0 && now >= e.exp }

type shard struct {
	mu sync.Mutex
	m  map[string]*entry // pointers, so Incr updates in place with one lookup
	_  [128 - 16]byte    // keep shards on separate cache lines
}

// Store is a sharded, concurrency-safe key/value store. The zero value is not
// usable; create one with New.
type Store struct {
	seed       maphash.Seed
	now        func() time.Time
	maxEntries int64
	maxBytes   int64

	_       [64]byte
	entries atomic.Int64 // includes expired entries not yet released
	_       [56]byte
	bytes   atomic.Int64 // len(key)+len(value) of every counted entry
	_       [56]byte

	shards [numShards]shard
}

// New returns an empty Store. It starts no goroutine; call Run to sweep
// expired entries in the background.
func New(cfg Config) *Store {
	s := &Store{
		seed:       maphash.MakeSeed(),
		now:        cfg.Now,
		maxEntries: int64(cfg.MaxEntries),
		maxBytes:   cfg.MaxBytes,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxEntries <= 0 {
		s.maxEntries = defaultMaxEntries
	}
	if s.maxBytes <= 0 {
		s.maxBytes = defaultMaxBytes
	}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*entry)
	}
	return s
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)&(numShards-1)]
}

func (s *Store) nowNano() int64 { return s.now().UnixNano() }

func entrySize(key string, val []byte) int64 { return int64(len(key) + len(val)) }

// reserve accounts for dEntries more entries and dBytes more bytes, failing
// with a wrapped ErrFull (and changing nothing) if a limit would be exceeded.
// Negative deltas always succeed.
func (s *Store) reserve(dEntries, dBytes int64) error {
	if dEntries > 0 {
		if n := s.entries.Add(dEntries); n > s.maxEntries {
			s.entries.Add(-dEntries)
			return fmt.Errorf("%w: MaxEntries %d reached", ErrFull, s.maxEntries)
		}
	} else if dEntries < 0 {
		s.entries.Add(dEntries)
	}
	if dBytes > 0 {
		if n := s.bytes.Add(dBytes); n > s.maxBytes {
			s.bytes.Add(-dBytes)
			if dEntries > 0 {
				s.entries.Add(-dEntries)
			}
			return fmt.Errorf("%w: MaxBytes %d would be exceeded", ErrFull, s.maxBytes)
		}
	} else if dBytes < 0 {
		s.bytes.Add(dBytes)
	}
	return nil
}

// release drops the accounting of one entry. Caller holds the shard lock and
// has removed it from the map.
func (s *Store) release(key string, e *entry) {
	s.entries.Add(-1)
	s.bytes.Add(-entrySize(key, e.val))
}

// insertKey: Set and Incr copy a key when they insert it, and only then, so a
// caller may pass a transient view of foreign memory as key (pybridge passes
// views of Python strings) without paying a copy on every lookup.

// Get returns the value of key. The returned slice is shared and immutable:
// callers must not modify it.
func (s *Store) Get(key string) (value []byte, ok bool) {
	sh := s.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key]
	if ok && e.exp != 0 && e.expired(s.nowNano()) {
		delete(sh.m, key)
		s.release(key, e)
		ok = false
	}
	if ok {
		value = e.val // read under the lock: Set and Incr replace it in place
	}
	sh.mu.Unlock()
	return value, ok
}

// Set stores a copy of value under key. ttl <= 0 means no expiry. It returns
// a wrapped ErrFull if the store would exceed a limit; replacing a key counts
// only the difference in size.
func (s *Store) Set(key string, value []byte, ttl time.Duration) error {
	v := make([]byte, len(value))
	copy(v, value)
	var exp int64
	if ttl > 0 {
		exp = s.now().Add(ttl).UnixNano()
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	dEntries, dBytes := int64(1), entrySize(key, v)
	old, ok := sh.m[key]
	if ok {
		dEntries = 0
		dBytes -= entrySize(key, old.val)
	}
	if err := s.reserve(dEntries, dBytes); err != nil {
		return err
	}
	if ok {
		old.val, old.exp = v, exp
	} else {
		sh.m[strings.Clone(key)] = &entry{val: v, exp: exp} // see insertKey
	}
	return nil
}

// Delete removes key and reports whether it existed and was not expired.
func (s *Store) Delete(key string) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[key]
	if !ok {
		return false
	}
	delete(sh.m, key)
	s.release(key, e)
	return !(e.exp != 0 && e.expired(s.nowNano()))
}

// Incr atomically adds delta to the CBOR integer stored under key and returns
// the new value, stored re-encoded in shortest form. A missing or expired key
// counts from 0 (and gets no expiry); an existing key keeps its TTL. It
// returns ErrNotInteger if the value is not a plain CBOR integer and
// ErrOverflow if the result is outside int64 (stored values outside int64
// count), leaving the value untouched in both cases.
func (s *Store) Incr(key string, delta int64) (int64, error) {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, exists := sh.m[key]
	live := exists && !(old.exp != 0 && old.expired(s.nowNano()))
	var hi, lo uint64
	exp := int64(0)
	if live {
		var ok bool
		if hi, lo, ok = decodeCBORInt(old.val); !ok {
			return 0, ErrNotInteger
		}
		exp = old.exp
	}
	n, ok := addInt128ToInt64(hi, lo, delta)
	if !ok {
		return 0, ErrOverflow
	}
	v := encodeCBORInt(n)
	dEntries, dBytes := int64(1), entrySize(key, v)
	if exists {
		dEntries = 0
		dBytes -= entrySize(key, old.val)
	}
	if dEntries != 0 || dBytes != 0 {
		if err := s.reserve(dEntries, dBytes); err != nil {
			return 0, err
		}
	}
	if exists {
		old.val, old.exp = v, exp
	} else {
		sh.m[strings.Clone(key)] = &entry{val: v, exp: exp} // see insertKey
	}
	return n, nil
}

// Keys returns the unexpired keys starting with prefix ("" = all), sorted.
// Expired entries it meets are released.
func (s *Store) Keys(prefix string) []string {
	now := s.nowNano()
	var keys []string
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.expired(now) {
				delete(sh.m, k)
				s.release(k, e)
				continue
			}
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		sh.mu.Unlock()
	}
	slices.Sort(keys)
	return keys
}

// Len returns the number of entries, including expired ones not yet released.
func (s *Store) Len() int { return int(s.entries.Load()) }

// Bytes returns the bytes of keys plus values counted against MaxBytes,
// including expired entries not yet released.
func (s *Store) Bytes() int64 { return s.bytes.Load() }

// Sweep removes all expired entries now.
func (s *Store) Sweep() {
	now := s.nowNano()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.expired(now) {
				delete(sh.m, k)
				s.release(k, e)
			}
		}
		sh.mu.Unlock()
	}
}

// Run calls Sweep every interval (1s if every <= 0) until ctx is done.
func (s *Store) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = defaultSweepEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sweep()
		}
	}
}
