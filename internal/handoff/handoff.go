// Package handoff passes one result from the goroutine (or locked OS thread)
// that produces it to the one that waits, spinning briefly before parking
// when the waiter asks to.
//
// Waking a parked goroutine that is locked to its OS thread, or a parked OS
// thread, costs a futex wake-up: about 15-35 µs on this project's machines,
// against well under a microsecond when the waiter is still spinning. Results
// that arrive within the spin window skip the wake-up; later ones pay it.
package handoff

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	waiting int32 = iota
	parked
	done
)

// Slot carries one value. The zero Slot is ready to use; it must not be copied.
type Slot[T any] struct {
	taken atomic.Bool
	state atomic.Int32
	v     T
	// ch is set by Wait before it parks. The state's change to parked
	// publishes it: Deliver reads it only after seeing that change.
	ch chan struct{}
}

// parkChans are the channels Waits park on, used again once their one
// delivery has been received: a request-serving node parks once a call, and
// a channel made each time was a good part of its garbage.
var parkChans = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

// Deliver publishes v. Only the first delivery counts; it reports whether v was it.
func (s *Slot[T]) Deliver(v T) bool {
	if !s.taken.CompareAndSwap(false, true) {
		return false
	}
	s.v = v
	if s.state.Swap(done) == parked {
		s.ch <- struct{}{}
	}
	return true
}

// Spinner limits how many goroutines spin at once, so that many waiters do not
// burn every CPU; the zero value allows none (waiters park at once).
type Spinner struct {
	For     time.Duration // how long one waiter spins
	Max     int32         // how many spin at once
	running atomic.Int32
}

// spin waits up to sp.For for s to be done, if a spinning place is free.
func (sp *Spinner) spin(state *atomic.Int32) {
	if sp == nil || sp.For <= 0 {
		return
	}
	if sp.running.Add(1) <= sp.Max {
		deadline := time.Now().Add(sp.For)
		for state.Load() == waiting && time.Now().Before(deadline) {
		}
	}
	sp.running.Add(-1)
}

// Wait returns the delivered value, or ctx's error, or ErrStopped when stop
// closes first (stop may be nil).
func (s *Slot[T]) Wait(ctx context.Context, sp *Spinner, stop <-chan struct{}) (T, error) {
	sp.spin(&s.state)
	if s.state.Load() != done {
		ch := parkChans.Get().(chan struct{})
		s.ch = ch
		if !s.state.CompareAndSwap(waiting, parked) {
			parkChans.Put(ch) // delivered meanwhile: no one sends on it
			return s.v, nil
		}
		select {
		case <-ch:
			// Deliver's one send is received: the channel is empty, and
			// no one else sends on it.
			parkChans.Put(ch)
		case <-ctx.Done():
			// A late Deliver may still send on ch: it is left to it.
			var zero T
			return zero, ctx.Err()
		case <-stop:
			var zero T
			return zero, ErrStopped
		}
	}
	return s.v, nil
}

// Abandon is for a waiter that gave up (Wait returned an error): it refuses
// every later delivery and returns the value delivered before, if one was,
// for the waiter to dispose of (a value that owns memory outside Go's heap).
// A delivery under way when Abandon is called is waited for.
func (s *Slot[T]) Abandon() (T, bool) {
	if s.taken.CompareAndSwap(false, true) {
		var zero T
		return zero, false
	}
	for s.state.Load() != done { // Deliver stores v, then marks done
		runtime.Gosched()
	}
	return s.v, true
}

// Done reports whether a value was delivered.
func (s *Slot[T]) Done() bool { return s.state.Load() == done }

type stoppedError struct{}

func (stoppedError) Error() string { return "handoff: stopped" }

// ErrStopped is returned by Wait when its stop channel closed first.
var ErrStopped error = stoppedError{}
