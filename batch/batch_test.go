package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// double "runs" a batch: each item's result is the item twice; an item "boom"
// fails its batch.
func double(calls *atomic.Int64, delay time.Duration) RunFunc {
	return func(ctx context.Context, s Spec, extra []byte, items [][]byte) ([][]byte, error) {
		calls.Add(1)
		time.Sleep(delay)
		out := make([][]byte, len(items))
		for i, it := range items {
			if string(it) == "boom" {
				return nil, errors.New("boom")
			}
			out[i] = append(append([]byte(nil), it...), it...)
		}
		return out, nil
	}
}

func TestCoalesce(t *testing.T) {
	var calls atomic.Int64
	b := New(double(&calls, 2*time.Millisecond))
	spec := Spec{Module: "m", Function: "f", MaxBatch: 64, MaxWait: 5 * time.Millisecond}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			items := [][]byte{[]byte(fmt.Sprint(i)), []byte(fmt.Sprint(i, "b"))}
			out, err := b.Submit(context.Background(), spec, nil, items)
			if err != nil || len(out) != 2 || string(out[0]) != fmt.Sprintf("%d%d", i, i) || string(out[1]) != fmt.Sprintf("%db%db", i, i) {
				t.Errorf("call %d: %q, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	batches, items := b.Stats()
	if items != 128 || batches > 8 || calls.Load() != batches {
		t.Fatalf("64 calls of 2 items ran as %d batches (%d items)", batches, items)
	}
	t.Logf("64 concurrent calls -> %d batches", batches)
}

func TestErrorFailsOnlyItsBatch(t *testing.T) {
	var calls atomic.Int64
	b := New(double(&calls, 0))
	spec := Spec{Module: "m", Function: "f", MaxBatch: 2, MaxWait: time.Second}
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() { _, err := b.Submit(ctx, spec, nil, [][]byte{[]byte("boom")}); errs <- err }()
	go func() { _, err := b.Submit(ctx, spec, nil, [][]byte{[]byte("ok")}); errs <- err }()
	for range 2 {
		if err := <-errs; err == nil || err.Error() != "boom" {
			t.Fatalf("a call in the failing batch: %v", err)
		}
	}
	out, err := b.Submit(ctx, Spec{Module: "m", Function: "f", MaxBatch: 1}, nil, [][]byte{[]byte("x")})
	if err != nil || string(out[0]) != "xx" {
		t.Fatalf("the next batch: %q %v", out, err)
	}
}

func TestExtraArgsSeparateBatches(t *testing.T) {
	var seen sync.Map
	b := New(func(ctx context.Context, s Spec, extra []byte, items [][]byte) ([][]byte, error) {
		for _, it := range items {
			if string(it) != string(extra) {
				return nil, fmt.Errorf("item %s in the batch for %s", it, extra)
			}
		}
		seen.Store(string(extra), true)
		return items, nil
	})
	spec := Spec{Module: "m", Function: "f", MaxWait: time.Millisecond}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := []byte(fmt.Sprint(i % 2))
			if _, err := b.Submit(context.Background(), spec, k, [][]byte{k}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestCallerTimeout(t *testing.T) {
	var calls atomic.Int64
	b := New(double(&calls, 200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.Submit(ctx, Spec{Module: "m", Function: "f"}, nil, [][]byte{[]byte("x")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}
