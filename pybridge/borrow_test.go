package pybridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// A borrowed result reads as a copied one would, from the pool and from the
// loop, and releasing it frees what it held.
func TestCallBorrowed(t *testing.T) {
	want := bytes.Repeat([]byte("x"), 1<<16)
	for _, tc := range []struct {
		name, fn string
		args     []any
	}{
		{"pool", "big_bytes", []any{1 << 16}},
		{"loop", "async_big_bytes", []any{1 << 16, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, _ := cbor.Marshal(tc.args)
			before := py.Borrowed()
			out, release, err := py.CallBorrowed(context.Background(), pybridge.CallOpts{}, "bridgetest", tc.fn, args)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := cbor.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, not the result", len(got))
			}
			if n := py.Borrowed(); n != before+1 {
				t.Errorf("%d results borrowed, want %d", n, before+1)
			}
			release()
			release() // a second call frees nothing
			if n := py.Borrowed(); n != before {
				t.Errorf("%d results borrowed after release, want %d", n, before)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		args, _ := cbor.Marshal([]any{"no"})
		_, release, err := py.CallBorrowed(context.Background(), pybridge.CallOpts{}, "bridgetest", "fail", args)
		var pe *pybridge.Error
		if !errors.As(err, &pe) {
			t.Fatalf("err = %v, want a Python exception", err)
		}
		release() // a no-op, and safe
	})
}

// Callers that give up around the moment their result arrives leave nothing
// borrowed behind: the result is freed by whichever side comes last.
func TestCallBorrowedAbandonedFreesResults(t *testing.T) {
	before := py.Borrowed()
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[bool]int{} // timed out?
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Deadlines from 1 to 51 ms, around the coroutine's sleep and its answer.
			args, _ := cbor.Marshal([]any{1 << 14, 0.005})
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1000+500*(i%100))*time.Microsecond)
			defer cancel()
			_, release, err := py.CallBorrowed(ctx, pybridge.CallOpts{}, "bridgetest", "async_big_bytes", args)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Error(err)
			}
			mu.Lock()
			outcomes[err != nil]++
			mu.Unlock()
			release()
		}()
	}
	wg.Wait()
	t.Logf("%d answered, %d gave up", outcomes[false], outcomes[true])
	// Results that arrive after their caller left are freed as they arrive:
	// one more call through the loop, after every task has ended, is behind
	// them all.
	deadline := time.Now().Add(10 * time.Second)
	for py.Borrowed() != before && time.Now().Before(deadline) {
		args, _ := cbor.Marshal([]any{0, 0.01})
		py.Call(context.Background(), "bridgetest", "async_big_bytes", args)
	}
	if n := py.Borrowed(); n != before {
		t.Errorf("%d results still borrowed, want %d", n, before)
	}
}

// Calls of every size, many at once, reach Python whole, on the loop and on
// the pool: small ones through the arena the goroutines share with the Python
// threads, ones too large for it, or arriving while it or the queue is full,
// through C.
func TestCallsOfEverySize(t *testing.T) {
	sizes := []int{0, 1, 100, 4 << 10, 16<<10 - 64, 16<<10 + 64, 60 << 10, 200 << 10}
	for _, fn := range []string{"async_echo", "echo_bytes"} {
		t.Run(fn, func(t *testing.T) {
			inParallel(t, 32, func(g int) error {
				for i := range 20 {
					n := sizes[(g+i)%len(sizes)]
					payload := bytes.Repeat([]byte{byte(g + i)}, n)
					args, _ := cbor.Marshal([]any{payload})
					out, err := py.Call(context.Background(), "bridgetest", fn, args)
					if err != nil {
						return err
					}
					var got []byte
					if err := cbor.Unmarshal(out, &got); err != nil {
						return err
					}
					if !bytes.Equal(got, payload) {
						return fmt.Errorf("%d bytes sent, %d different bytes back", n, len(got))
					}
				}
				return nil
			})
		})
	}
}

// Bursts of large results alive at once and then released together, as a
// node serving large responses to many connections makes them, reuse the
// heap freed by the burst before: the process does not give it back and
// fault every page in again for the next burst.
func TestBorrowedBurstsReuseTheHeap(t *testing.T) {
	const burst = 80
	for _, size := range []int{64 << 10, 256 << 10} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) {
			args, _ := cbor.Marshal([]any{size, 0})
			round := func() {
				releases := make([]func(), burst)
				inParallel(t, burst, func(g int) error {
					_, release, err := py.CallBorrowed(context.Background(), pybridge.CallOpts{}, "bridgetest", "async_big_bytes", args)
					releases[g] = release
					return err
				})
				for _, release := range releases {
					if release != nil {
						release()
					}
				}
			}
			for range 3 { // the heap grows to the size of a burst
				round()
			}
			const rounds = 10
			before := minorFaults(t)
			for range rounds {
				round()
			}
			// Faulting a result's pages in again would be 16 faults a call
			// for 64 KiB, 64 for 256 KiB. What the rest of the process
			// faults in is far less.
			if perCall := float64(minorFaults(t)-before) / (rounds * burst); perCall > 2 {
				t.Errorf("%.1f page faults a call, want at most 2: the heap freed by each burst went back to the kernel", perCall)
			}
		})
	}
}

func minorFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}
