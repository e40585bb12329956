package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var jsonBody = []string{"Content-Type", "application/json"}

func TestExampleFastAPI(t *testing.T) {
	dir, _ := filepath.Abs("../examples/fastapi_app")
	base := startApp(t, "app:app", "--pythonpath", dir) // detected as ASGI: FastAPI's __call__ is async
	checkHTTP(t, base, []httpCase{
		{"root", "GET", "/", nil, nil, 200, `{"node":"nonode@nohost","hits":1,"started":true}`, true},
		{"path and query", "GET", "/items/5?q=x", nil, nil, 200, `{"item_id":5,"q":"x"}`, true},
		{"bad path param", "GET", "/items/notanint", nil, nil, 422, `"type":"type_error.integer"`, true},
		{"json body", "POST", "/items", []byte(`{"name":"a","price":10,"tags":["t"]}`), jsonBody, 200, `{"name":"a","price_with_tax":12.0,"tags":["t"]}`, true},
		{"invalid body", "POST", "/items", []byte(`{"name":"a"}`), jsonBody, 422, `"msg":"field required"`, true},
		{"streaming", "GET", "/stream", nil, nil, 200, "0\n1\n2\n3\n4\n", true},
		{"not found", "GET", "/nope", nil, nil, 404, `{"detail":"Not Found"}`, true},
	})
	// The background task of the POST above ran after its response.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, got := get(t, "GET", base+"/created", nil)
		if got == `{"created":1}` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background task never ran: %s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestExampleFlask(t *testing.T) {
	dir, _ := filepath.Abs("../examples/flask_app")
	base := startApp(t, "app:app", "--pythonpath", dir)
	checkHTTP(t, base, []httpCase{
		{"index", "GET", "/", nil, nil, 200, `"hits":1`, true},
		{"json echo", "POST", "/echo?x=1", []byte(`{"a":[1,2]}`), jsonBody, 200, `{"args":{"x":"1"},"got":{"a":[1,2]}}`, true},
		{"path param", "GET", "/user/bob", nil, nil, 200, "hello bob", true},
		{"not found", "GET", "/nope", nil, nil, 404, "Not Found", true},
	})
}

// The hello examples are served without -k: the worker class is detected, and
// the WSGI one without an attribute (application is the default).
func TestExampleHello(t *testing.T) {
	for _, tc := range []struct{ dir, spec, class string }{
		{"asgi_hello", "app:app", "asgi"},
		{"wsgi_hello", "app", "wsgi"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir, _ := filepath.Abs("../examples/" + tc.dir)
			s := serveApp(t, dir, tc.spec, "-b", "127.0.0.1:0")
			if got := mustFetch(t, s.base+"/"); got != "Hello, world!" {
				t.Fatalf("got %q", got)
			}
			if !strings.Contains(s.logs(), "class="+tc.class) {
				t.Fatalf("not detected as %s:\n%s", tc.class, s.logs())
			}
		})
	}
}
