package pybridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// Calls blocked in C past their caller's deadline cost the pool its threads:
// the pool replaces them, and shrinks back once they return.
const poolBase = 4 // TestMain's Threads

// waitPool waits until the RPC pool has its base threads and none stuck.
func waitPool(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		total, lost := py.PoolStats(pybridge.LaneRPC)
		if total == poolBase && lost == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d threads, %d stuck; want %d", what, total, lost, poolBase)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStuckThreadsReplacedThenShrink(t *testing.T) {
	const base = poolBase
	waitPool(t, "pool before the test (surplus threads of earlier tests idle out)")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if _, err := call(t, ctx, "sleep_c", 1.5); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("stuck call: %v, want its deadline", err)
			}
		}()
	}
	wg.Wait()
	total, lost := py.PoolStats(pybridge.LaneRPC)
	if lost != 4 || total != base+4 {
		t.Fatalf("pool with 4 stuck threads: %d threads, %d stuck; want %d+4 and 4", total, lost, base)
	}
	start := time.Now()
	if v, err := call(t, context.Background(), "add", 1, 2); err != nil || v.(uint64) != 3 {
		t.Fatalf("call beside stuck threads: %v %v", v, err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("call beside stuck threads took %v", el)
	}
	waitPool(t, "pool after the stuck calls returned")
}

// A call whose caller gives up while it waits in the queue never runs, and
// costs the pool no thread.
func TestQueuedCallAbandonedNeverRuns(t *testing.T) {
	waitPool(t, "pool before the test")
	var wg sync.WaitGroup
	for range poolBase { // every thread busy, with no deadline: none is lost
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := call(t, context.Background(), "sleep_c", 0.5); err != nil {
				t.Errorf("blocking call: %v", err)
			}
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, busy := py.PoolThreads(); busy >= poolBase {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pool's threads never all became busy")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := call(t, ctx, "count_run", "abandoned"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued call: %v, want its deadline", err)
	}
	if total, lost := py.PoolStats(pybridge.LaneRPC); total != poolBase || lost != 0 {
		t.Errorf("after a queued call was given up: %d threads, %d stuck; want %d and 0", total, lost, poolBase)
	}
	wg.Wait()
	// Calls run in queue order: once a later one has run, the abandoned one
	// would have.
	if _, err := call(t, context.Background(), "count_run", "after"); err != nil {
		t.Fatal(err)
	}
	if v, err := call(t, context.Background(), "run_count", "abandoned"); err != nil || v.(uint64) != 0 {
		t.Fatalf("the abandoned call ran %v times (%v), want 0", v, err)
	}
}

// A call whose caller gives up while its thread waits for the GIL never runs,
// and costs the pool no thread.
func TestCallAbandonedWaitingForGILNeverRuns(t *testing.T) {
	waitPool(t, "pool before the test")
	held, key := fmt.Sprintf("gil:%d", time.Now().UnixNano()), fmt.Sprintf("gil-abandoned:%d", time.Now().UnixNano())
	done := make(chan error, 1)
	go func() {
		_, err := call(t, context.Background(), "hold_gil", held, 60_000_000)
		done <- err
	}()
	waitState(t, held, "holding")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := call(t, ctx, "count_run", key); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call waiting for the GIL: %v, want its deadline", err)
	}
	if total, lost := py.PoolStats(pybridge.LaneRPC); total != poolBase || lost != 0 {
		t.Errorf("after a call waiting for the GIL was given up: %d threads, %d stuck; want %d and 0", total, lost, poolBase)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, err := call(t, context.Background(), "run_count", key); err != nil || v.(uint64) != 0 {
		t.Fatalf("the abandoned call ran %v times (%v), want 0", v, err)
	}
}

// A result whose encoding passes MaxResult is refused at the bound.
func TestMaxResultStopsEncoding(t *testing.T) {
	_, err := py.CallWith(context.Background(), pybridge.CallOpts{MaxResult: 1 << 20}, "bridgetest", "big_bytes", args(t, 64<<20))
	if !errors.Is(err, pybridge.ErrTooLarge) {
		t.Fatalf("64 MiB result under a 1 MiB bound: %v, want ErrTooLarge", err)
	}
	if _, err := py.CallWith(context.Background(), pybridge.CallOpts{MaxResult: 1 << 20}, "bridgetest", "big_bytes", args(t, 1000)); err != nil {
		t.Fatalf("small result: %v", err)
	}
}

// A sync function that once returned an awaitable keeps running on the pool.
func TestAwaitableResultDoesNotMakeFunctionAsync(t *testing.T) {
	if _, err := call(t, context.Background(), "maybe_awaitable", true); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		v, err := call(t, context.Background(), "maybe_awaitable", false)
		if err != nil {
			t.Fatal(err)
		}
		if v != "on the pool" {
			t.Fatalf("sync body ran %v", v)
		}
	}
}

func TestFutureWithBrokenGetLoopIsSettled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := call(t, ctx, "go_async_broken_get_loop", 10)
	if err != nil || v != "settled" {
		t.Fatalf("got %v, %v; want settled", v, err)
	}
}
