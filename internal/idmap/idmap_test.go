package idmap

import (
	"slices"
	"sync"
	"testing"
)

func TestMap(t *testing.T) {
	var m Map[uint64, string]
	if _, ok := m.Load(1); ok {
		t.Fatal("the zero map has an entry")
	}
	m.Delete(1) // no entry: nothing happens
	m.Store(1, "a")
	m.Store(2, "b")
	m.Store(2, "c")
	steps := []struct {
		name string
		op   func() (string, bool)
		want string
		ok   bool
	}{
		{"load 1", func() (string, bool) { return m.Load(1) }, "a", true},
		{"load replaced 2", func() (string, bool) { return m.Load(2) }, "c", true},
		{"take 1", func() (string, bool) { return m.LoadAndDelete(1) }, "a", true},
		{"take 1 again", func() (string, bool) { return m.LoadAndDelete(1) }, "", false},
		{"load 3", func() (string, bool) { return m.Load(3) }, "", false},
	}
	for _, s := range steps {
		if got, ok := s.op(); got != s.want || ok != s.ok {
			t.Fatalf("%s: got %q %v, want %q %v", s.name, got, ok, s.want, s.ok)
		}
	}
	m.Store(4, "d")
	var seen []string
	m.Range(func(_ uint64, v string) { seen = append(seen, v) })
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"c", "d"}) {
		t.Fatalf("ranged over %q", seen)
	}
	got := m.Drain()
	slices.Sort(got)
	if left := m.Drain(); !slices.Equal(got, []string{"c", "d"}) || len(left) != 0 {
		t.Fatalf("drained %q, then %q", got, left)
	}
}

// Each id is taken by exactly one of the goroutines racing for it.
func TestMapOneTakerPerID(t *testing.T) {
	var m Map[int, int]
	const n = 2000
	for i := range n {
		m.Store(i, i)
	}
	var mu sync.Mutex
	taken := make(map[int]int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if _, ok := m.LoadAndDelete(i); ok {
					mu.Lock()
					taken[i]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if taken[i] != 1 {
			t.Fatalf("id %d taken %d times", i, taken[i])
		}
	}
	if left := m.Drain(); len(left) != 0 {
		t.Fatalf("%d left", len(left))
	}
}
