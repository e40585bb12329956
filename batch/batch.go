// Package batch coalesces concurrent calls to a function that takes a list and
// returns a list of the same length (hornbeam_ml.batched) into fewer, larger
// calls, before they enter Python: each caller's items are appended to the
// function's open batch, the batch runs when it holds MaxBatch items or its
// oldest item has waited MaxWait, and the results are split back in order.
//
// At most MaxRunning batches per function (and set of extra arguments) run at
// once; calls that arrive meanwhile form the next batch, so batches grow with
// the load. Two, not one: a CPU model keeps two cores busy, and a GPU model
// has the next batch's inputs ready as the last one ends. An error fails the
// calls of its batch only.
package batch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Spec describes a batched function.
type Spec struct {
	Module, Function string
	MaxBatch         int           // items per batch; 0 = 64
	MaxWait          time.Duration // the longest an item waits for company; 0 = 5 ms
}

// RunFunc runs one batch: items are the callers' items (each a CBOR item) in
// order; extra is the CBOR array of the arguments after the list, the same for
// every call in the batch. It returns one CBOR item per item.
type RunFunc func(ctx context.Context, spec Spec, extra []byte, items [][]byte) ([][]byte, error)

// ErrBusy reports that a function's queue is full.
var ErrBusy = errors.New("batch: too many items waiting")

// MaxPendingBatches bounds the items waiting per function: this many full batches.
const MaxPendingBatches = 64

// MaxRunning is how many batches of one function run at once.
const MaxRunning = 2

// Batcher holds the batched functions of one interpreter.
type Batcher struct {
	run RunFunc
	mu  sync.Mutex
	// specs is replaced, never changed, on Register: Lookup runs on every
	// remote call the node serves, so it takes no lock and allocates nothing.
	specs  atomic.Pointer[map[[2]string]Spec]
	queues map[string]*queue
	calls  int64 // batches run, for tests and stats
	items  int64
}

type call struct {
	items [][]byte
	done  chan result
}

type result struct {
	values [][]byte
	err    error
}

type queue struct {
	spec    Spec
	extra   []byte
	waiting []*call
	n       int // items waiting
	running int // batches of this queue in Python
	timer   *time.Timer
}

// New makes a Batcher that runs batches with run.
func New(run RunFunc) *Batcher {
	b := &Batcher{run: run, queues: map[string]*queue{}}
	b.specs.Store(&map[[2]string]Spec{})
	return b
}

func (s Spec) withDefaults() Spec {
	if s.MaxBatch <= 0 {
		s.MaxBatch = 64
	}
	if s.MaxWait <= 0 {
		s.MaxWait = 5 * time.Millisecond
	}
	return s
}

// Register marks module.function as batched (again: the last spec wins).
func (b *Batcher) Register(s Spec) {
	s = s.withDefaults()
	b.mu.Lock() // serializes Registers
	next := maps.Clone(*b.specs.Load())
	next[[2]string{s.Module, s.Function}] = s
	b.specs.Store(&next)
	b.mu.Unlock()
}

// Lookup returns module.function's spec if it is batched.
func (b *Batcher) Lookup(module, function string) (Spec, bool) {
	s, ok := (*b.specs.Load())[[2]string{module, function}]
	return s, ok
}

// Stats returns how many batches ran and how many items they held.
func (b *Batcher) Stats() (batches, items int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls, b.items
}

// Submit adds items to spec's batch for extra and waits for their results.
// If ctx ends first the caller gets its error; the items still run.
func (b *Batcher) Submit(ctx context.Context, spec Spec, extra []byte, items [][]byte) ([][]byte, error) {
	if len(items) == 0 {
		return [][]byte{}, nil
	}
	spec = spec.withDefaults()
	c := &call{items: items, done: make(chan result, 1)}
	key := spec.Module + "." + spec.Function + "\x00" + string(extra)
	b.mu.Lock()
	q := b.queues[key]
	if q == nil {
		q = &queue{spec: spec, extra: extra}
		b.queues[key] = q
	}
	if q.n+len(items) > MaxPendingBatches*spec.MaxBatch && q.n > 0 {
		b.mu.Unlock()
		return nil, fmt.Errorf("%w: %d items queued for %s.%s (bound %d)", ErrBusy, q.n, spec.Module, spec.Function, MaxPendingBatches*spec.MaxBatch)
	}
	q.waiting = append(q.waiting, c)
	q.n += len(items)
	switch {
	case q.running >= MaxRunning:
		// A running batch's end starts the next one.
	case q.n >= spec.MaxBatch:
		b.startLocked(key, q)
	case q.timer == nil:
		q.timer = time.AfterFunc(spec.MaxWait, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			q.timer = nil
			if q.running < MaxRunning && q.n > 0 {
				b.startLocked(key, q)
			}
		})
	}
	b.mu.Unlock()
	select {
	case r := <-c.done:
		return r.values, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startLocked takes up to MaxBatch items (whole calls; a larger call goes
// alone) from q and runs them.
func (b *Batcher) startLocked(key string, q *queue) {
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	var take []*call
	n := 0
	for len(q.waiting) > 0 {
		c := q.waiting[0]
		if n > 0 && n+len(c.items) > q.spec.MaxBatch {
			break
		}
		take = append(take, c)
		n += len(c.items)
		q.waiting = q.waiting[1:]
	}
	q.n -= n
	q.running++
	b.calls++
	b.items += int64(n)
	go b.runBatch(key, q, take, n)
}

func (b *Batcher) runBatch(key string, q *queue, calls []*call, n int) {
	items := make([][]byte, 0, n)
	for _, c := range calls {
		items = append(items, c.items...)
	}
	values, err := b.run(context.Background(), q.spec, q.extra, items)
	if err == nil && len(values) != len(items) {
		err = fmt.Errorf("batch: %s.%s returned %d results for %d items", q.spec.Module, q.spec.Function, len(values), len(items))
	}
	for _, c := range calls {
		if err != nil {
			c.done <- result{err: err}
			continue
		}
		c.done <- result{values: values[:len(c.items):len(c.items)]}
		values = values[len(c.items):]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	q.running--
	if q.n > 0 && q.timer == nil {
		// What arrived while the batch ran has waited about that long: go now.
		b.startLocked(key, q)
	} else if q.n == 0 && q.running == 0 {
		delete(b.queues, key)
	}
}
