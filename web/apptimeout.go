package web

import (
	"context"
	"sync"
	"time"
)

// ending is a context's end: its Done channel, made only when someone asks
// for it (most requests end without anyone waiting), and its Err. The owner's
// mutex guards it.
type ending struct {
	done chan struct{}
	err  error
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (e *ending) doneLocked() <-chan struct{} {
	if e.done == nil {
		if e.err != nil {
			return closedChan
		}
		e.done = make(chan struct{})
	}
	return e.done
}

// endLocked ends the context with err, once.
func (e *ending) endLocked(err error) {
	if e.err == nil {
		e.err = err
		if e.done != nil {
			close(e.done)
		}
	}
}

// appDeadline is the context an app's call runs under: the request's values
// without its cancellation (as with uvicorn and gunicorn, a client that leaves
// does not stop the app; an ASGI app learns it from receive()) and the
// --timeout deadline. No timer is set per request: the server's sweep, which
// runs a few times per --timeout (sweepEvery), ends the calls whose deadline
// has passed, so a call is stopped between --timeout and --timeout plus one
// sweep period after it began. A request without a deadline (a websocket) is
// never ended by the sweep.
type appDeadline struct {
	parent   context.Context
	deadline time.Time
	mu       sync.Mutex
	end      ending
}

func (d *appDeadline) Deadline() (time.Time, bool) { return d.deadline, !d.deadline.IsZero() }

func (d *appDeadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.end.doneLocked()
}

func (d *appDeadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.end.err
}

func (d *appDeadline) Value(key any) any { return d.parent.Value(key) }

// expire ends the call: its deadline has passed.
func (d *appDeadline) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.end.endLocked(context.DeadlineExceeded)
}

// sweepEvery is how often the server looks for calls past --timeout: a
// twentieth of it, between 10 ms and a second.
func sweepEvery(timeout time.Duration) time.Duration {
	return min(max(timeout/20, 10*time.Millisecond), time.Second)
}

// sweepDeadlines expires the calls past their deadline until stop closes.
func (s *Server) sweepDeadlines(stop <-chan struct{}) {
	t := time.NewTicker(sweepEvery(s.cfg.Timeout))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.reqs.Range(func(_ uint64, req *request) {
				if !req.app.deadline.IsZero() && now.After(req.app.deadline) {
					req.app.expire()
				}
			})
		}
	}
}
