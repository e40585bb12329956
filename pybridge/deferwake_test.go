package pybridge

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// On one P, requests made by goroutines that are ready to run together are
// carried by one wake-up, and a request after it gets its own.
func TestDeferredWakeBatchesOnOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var wakes atomic.Int32
	woke := make(chan struct{}, 100)
	stop := make(chan struct{})
	defer close(stop)
	d := newDeferredWake(func() { wakes.Add(1); woke <- struct{}{} }, stop)
	waitWake := func() {
		t.Helper()
		select {
		case <-woke:
		case <-time.After(5 * time.Second):
			t.Fatal("a requested wake-up never came")
		}
	}
	const n = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d.request()
		}()
	}
	close(start)
	wg.Wait()
	waitWake()
	if got := wakes.Load(); got > 3 {
		t.Fatalf("%d requests from goroutines ready together took %d wake-ups", n, got)
	}
	before := wakes.Load()
	d.request()
	waitWake()
	if wakes.Load() != before+1 {
		t.Fatalf("a later request was not woken for: %d wake-ups, want %d", wakes.Load(), before+1)
	}
}
