package web

import (
	"context"
	"sync"
	"time"
)

// appDeadline is the context an app's call runs under: the request's values
// without its cancellation (as with uvicorn and gunicorn, a client that leaves
// does not stop the app; an ASGI app learns it from receive()) and the
// --timeout deadline. No timer is set per request: the server's sweep, which
// runs a few times per --timeout (sweepEvery), ends the calls whose deadline
// has passed, so a call is stopped between --timeout and --timeout plus one
// sweep period after it began.
type appDeadline struct {
	parent   context.Context
	deadline time.Time
	mu       sync.Mutex
	done     chan struct{}
	err      error
}

func (d *appDeadline) Deadline() (time.Time, bool) { return d.deadline, true }

func (d *appDeadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		if d.err != nil {
			return closedChan
		}
		d.done = make(chan struct{})
	}
	return d.done
}

func (d *appDeadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *appDeadline) Value(key any) any { return d.parent.Value(key) }

// expire ends the call: its deadline has passed.
func (d *appDeadline) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = context.DeadlineExceeded
		if d.done != nil {
			close(d.done)
		}
	}
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
				if req.timed && now.After(req.app.deadline) {
					req.app.expire()
				}
			})
		}
	}
}
