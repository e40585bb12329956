// Package idmap holds the values of calls and requests in flight by their
// ids. Each entry lives from the start of a call to its end, so entries are
// added and removed at the rate of requests; a mutex over a Go map does that
// without the allocations of sync.Map, whose boxed keys and trie nodes cost
// more than the work they guard on this path.
package idmap

import "sync"

// Map is safe for concurrent use. Its zero value is empty and ready.
type Map[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

// Store sets the value for k.
func (m *Map[K, V]) Store(k K, v V) {
	m.mu.Lock()
	if m.m == nil {
		m.m = make(map[K]V)
	}
	m.m[k] = v
	m.mu.Unlock()
}

// Load returns the value for k, if there is one.
func (m *Map[K, V]) Load(k K) (V, bool) {
	m.mu.Lock()
	v, ok := m.m[k]
	m.mu.Unlock()
	return v, ok
}

// LoadAndDelete removes k and returns the value it had, if any.
func (m *Map[K, V]) LoadAndDelete(k K) (V, bool) {
	m.mu.Lock()
	v, ok := m.m[k]
	if ok {
		delete(m.m, k)
	}
	m.mu.Unlock()
	return v, ok
}

// Delete removes k.
func (m *Map[K, V]) Delete(k K) {
	m.mu.Lock()
	delete(m.m, k)
	m.mu.Unlock()
}

// Drain removes every entry and returns their values, in no order.
func (m *Map[K, V]) Drain() []V {
	m.mu.Lock()
	vs := make([]V, 0, len(m.m))
	for _, v := range m.m {
		vs = append(vs, v)
	}
	clear(m.m)
	m.mu.Unlock()
	return vs
}

// Range calls f for each entry, with the map locked: f must not use m.
func (m *Map[K, V]) Range(f func(K, V)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.m {
		f(k, v)
	}
}
