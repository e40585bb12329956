package web

import (
	"context"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// The test interpreters (fakePy, h1Py) share these: like pybridge, an app
// runs on a goroutine of its own (a Python thread), and the call returns
// when ctx ends even though the app goes on.

// runApp runs app on a goroutine counted by wg and returns its result, or
// ctx's error when ctx ends first.
func runApp(ctx context.Context, wg *sync.WaitGroup, app func() ([]byte, error)) ([]byte, error) {
	type result struct {
		out []byte
		err error
	}
	res := make(chan result, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, err := app()
		res <- result{out, err}
	}()
	select {
	case r := <-res:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// callback calls s's Go function name with [id, args...], as the app's
// Python does.
func callback(s *Server, name string, id uint64, args ...any) ([]byte, error) {
	data, _ := cbor.Marshal(append([]any{id}, args...))
	return s.Funcs()[name](context.Background(), data)
}
