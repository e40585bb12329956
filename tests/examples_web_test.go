package tests

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleFastAPI(t *testing.T) {
	dir, _ := filepath.Abs("../examples/fastapi_app")
	base := startApp(t, "app:app", "-k", "asgi", "--pythonpath", dir)
	tests := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/", "", 200, `{"node":"nonode@nohost","hits":1,"started":true}`},
		{"GET", "/items/5?q=x", "", 200, `{"item_id":5,"q":"x"}`},
		{"GET", "/items/notanint", "", 422, `"type":"type_error.integer"`},
		{"POST", "/items", `{"name":"a","price":10,"tags":["t"]}`, 200, `{"name":"a","price_with_tax":12.0,"tags":["t"]}`},
		{"POST", "/items", `{"name":"a"}`, 422, `"msg":"field required"`},
		{"GET", "/stream", "", 200, "0\n1\n2\n3\n4\n"},
		{"GET", "/nope", "", 404, `{"detail":"Not Found"}`},
	}
	for _, tt := range tests {
		var code int
		var got string
		if tt.body != "" {
			code, _, got = get(t, tt.method, base+tt.path, bytes.NewReader([]byte(tt.body)), "Content-Type", "application/json")
		} else {
			code, _, got = get(t, tt.method, base+tt.path, nil)
		}
		if code != tt.code || !strings.Contains(got, tt.want) {
			t.Errorf("%s %s: got %d %s, want %d containing %s", tt.method, tt.path, code, got, tt.code, tt.want)
		}
	}
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
	tests := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/", "", 200, `"hits":1`},
		{"POST", "/echo?x=1", `{"a":[1,2]}`, 200, `{"args":{"x":"1"},"got":{"a":[1,2]}}`},
		{"GET", "/user/bob", "", 200, "hello bob"},
		{"GET", "/nope", "", 404, "Not Found"},
	}
	for _, tt := range tests {
		var code int
		var got string
		if tt.body != "" {
			code, _, got = get(t, tt.method, base+tt.path, bytes.NewReader([]byte(tt.body)), "Content-Type", "application/json")
		} else {
			code, _, got = get(t, tt.method, base+tt.path, nil)
		}
		if code != tt.code || !strings.Contains(got, tt.want) {
			t.Errorf("%s %s: got %d %s, want %d containing %s", tt.method, tt.path, code, got, tt.code, tt.want)
		}
	}
}
