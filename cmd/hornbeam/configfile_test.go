package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.toml")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	tests := []struct {
		name, file string
		args       []string
		check      func(t *testing.T, f *webFlags, n *nodeFlags)
		err        string
	}{
		{"file values", `bind = ["127.0.0.1:9001", "unix:/tmp/x.sock"]
worker_class = "asgi"
timeout = 12.5
limit-concurrency = 7
name = "web@127.0.0.1"`, nil, func(t *testing.T, f *webFlags, n *nodeFlags) {
			if !slices.Equal(f.binds, []string{"127.0.0.1:9001", "unix:/tmp/x.sock"}) || f.workerClass != "asgi" ||
				f.timeout != 12.5 || f.limitConcurrency != 7 || n.name != "web@127.0.0.1" {
				t.Errorf("got %+v %+v", f, n)
			}
		}, ""},
		{"command line wins", `timeout = 12`, []string{"--timeout", "3"}, func(t *testing.T, f *webFlags, _ *nodeFlags) {
			if f.timeout != 3 {
				t.Errorf("timeout %v", f.timeout)
			}
		}, ""},
		{"unknown key", `nope = 1`, nil, nil, `unknown setting "nope"`},
		{"bad value", `timeout = "soon"`, nil, nil, "timeout"},
		{"bad toml", `timeout = `, nil, nil, "c.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newStartCmd()
			path := write(tt.file)
			if err := cmd.Flags().Parse(append(tt.args, "-c", path)); err != nil {
				t.Fatal(err)
			}
			err := applyConfigFile(cmd.Flags(), path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			get := func(n string) string { return cmd.Flags().Lookup(n).Value.String() }
			f := &webFlags{workerClass: get("worker-class")}
			f.binds, _ = cmd.Flags().GetStringArray("bind")
			f.timeout, _ = cmd.Flags().GetFloat64("timeout")
			f.limitConcurrency, _ = cmd.Flags().GetInt("limit-concurrency")
			tt.check(t, f, &nodeFlags{name: get("name")})
		})
	}
}
