package web

import (
	"context"
	"fmt"
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

// scopeKeys are the keys of the values of a cborASGIScope, in order.
var scopeKeys = [...]string{"type", "http_version", "method", "scheme", "path", "raw_path",
	"query_string", "root_path", "headers", "client", "server"}

// decodeEnv decodes a WSGI environ (a CBOR map) or an ASGI scope (a
// cborASGIScope) into the dict Python sees.
func decodeEnv(raw []byte) (map[string]any, error) {
	var tag cbor.RawTag
	if err := cbor.Unmarshal(raw, &tag); err == nil && tag.Number == cborASGIScope {
		var vals []any
		if err := cbor.Unmarshal(tag.Content, &vals); err != nil {
			return nil, err
		}
		if len(vals) != len(scopeKeys) {
			return nil, fmt.Errorf("an ASGI scope of %d values", len(vals))
		}
		m := map[string]any{"asgi": map[any]any{"version": "3.0", "spec_version": "2.3"}}
		for i, k := range scopeKeys {
			if _, list := vals[i].([]any); list && k == "method" {
				k = "subprotocols"
			}
			if vals[i] != nil || (k != "client" && k != "server") {
				m[k] = vals[i]
			}
		}
		return m, nil
	}
	var m map[string]any
	err := cbor.Unmarshal(raw, &m)
	return m, err
}
