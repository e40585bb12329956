package pybridge

import (
	"runtime"
	"sync/atomic"
)

// A node confined to one CPU runs Go on one P. There, waking a Python thread
// (the loop, or a pool thread) the moment a request is submitted lets that
// thread take the CPU from the goroutines still reading requests: it runs the
// one request it was given and sleeps again, two thread switches per request,
// each costly (tens of µs under a hypervisor). A deferredWake instead wakes
// once the goroutines that are ready to run have run, so one wake-up carries
// every request they submit. With more Ps the Python threads run on other CPUs
// and are woken at once.

// deferredWake calls wake after the goroutines ready to run have run, once per
// burst of requests.
type deferredWake struct {
	ch      chan struct{}
	pending atomic.Bool
	wake    func()
}

// newDeferredWake starts the goroutine that calls wake; it ends when stop closes.
func newDeferredWake(wake func(), stop <-chan struct{}) *deferredWake {
	d := &deferredWake{ch: make(chan struct{}, 1), wake: wake}
	go d.run(stop)
	return d
}

// request asks for a wake-up; it is cheap when one is pending already.
func (d *deferredWake) request() {
	if d.pending.CompareAndSwap(false, true) {
		select {
		case d.ch <- struct{}{}:
		default: // one is queued for run already
		}
	}
}

func (d *deferredWake) run(stop <-chan struct{}) {
	for {
		select {
		case <-d.ch:
		case <-stop:
			return
		}
		// Gosched puts this goroutine behind those ready to run.
		runtime.Gosched()
		// Cleared before the wake-up: a request that finds it set is
		// carried by the wake-up below.
		d.pending.Store(false)
		d.wake()
	}
}
