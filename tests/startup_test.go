package tests

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A reload onto a broken app keeps the running workers, whatever -k: the
// app is imported before a new worker says it is ready.
func TestWorkersReloadFailureExplicitClass(t *testing.T) {
	wsgi := func(v string) string {
		return "def application(environ, start_response):\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
			"    return [b'" + v + "']\n"
	}
	asgi := func(v string) string {
		return "async def app(scope, receive, send):\n" +
			"    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n" +
			"    await send({'type': 'http.response.body', 'body': b'" + v + "'})\n"
	}
	for _, tc := range []struct {
		name string
		code func(string) string
		args []string
	}{
		{"wsgi", wsgi, []string{"-k", "wsgi"}},
		{"asgi without lifespan", asgi, []string{"-k", "asgi", "--lifespan", "off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "app.py", tc.code("v1"))
			s := serveApp(t, dir, append([]string{"app", "-w", "2", "-b", "127.0.0.1:0"}, tc.args...)...)
			s.waitLog(t, "worker ready", 2, 20*time.Second)
			first := children(s.pid())
			writeFile(t, dir, "app.py", "def broken(:\n")
			syscall.Kill(s.pid(), syscall.SIGHUP)
			s.waitLog(t, "reload failed: keeping the running workers", 1, 20*time.Second)
			for range 10 {
				if got := mustFetch(t, s.base+"/"); got != "v1" {
					t.Fatalf("after a failed reload: %q", got)
				}
			}
			deadline := time.Now().Add(10 * time.Second) // the failed set's other worker goes
			for now := children(s.pid()); !slices.Equal(now, first); now = children(s.pid()) {
				if time.Now().After(deadline) {
					t.Fatalf("workers after a failed reload: %v, before %v", now, first)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(s.logs(), "SyntaxError") {
				t.Fatalf("the reason is not logged:\n%s", s.logs())
			}
		})
	}
}

// Start-up errors a person can act on: the app's traceback, the module
// named, a bad bind refused before the app is imported, a port in use
// reported at once.
func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.py", "import no_such_module_web9\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := fmt.Sprint(busy.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
		not   string
	}{
		{"import error, wsgi", []string{"bad:application", "-k", "wsgi", "-b", "127.0.0.1:0"},
			[]string{"loading the app failed", "Traceback", "bad.py", "no_such_module_web9"}, ""},
		{"import error, asgi", []string{"bad:app", "-k", "asgi", "-b", "127.0.0.1:0"},
			[]string{"loading bad:app", "Traceback", "no_such_module_web9"}, "lifespan"},
		{"bare port", []string{"bad:app", "-b", "8004"}, []string{`--bind "8004"`}, "Traceback"},
		{"cluster port in use", []string{"--name", "web9busy@127.0.0.1", "--cookie", "c", "--cluster-port", busyPort},
			[]string{"address already in use", busyPort}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := exec.Command(hornbeam, append([]string{"start"}, tc.args...)...)
			c.Dir = dir
			t0 := time.Now()
			done := make(chan []byte, 1)
			go func() { out, _ := c.CombinedOutput(); done <- out }()
			select {
			case out := <-done:
				for _, w := range tc.wants {
					if !strings.Contains(string(out), w) {
						t.Errorf("output lacks %q:\n%s", w, out)
					}
				}
				if tc.not != "" && strings.Contains(string(out), tc.not) {
					t.Errorf("output has %q:\n%s", tc.not, out)
				}
				if c.ProcessState.ExitCode() == 0 {
					t.Errorf("exit status 0")
				}
				if took := time.Since(t0); took > 3*time.Second {
					t.Errorf("exited after %v", took)
				} else {
					t.Logf("exited in %v", took)
				}
			case <-time.After(20 * time.Second):
				c.Process.Kill()
				t.Fatal("did not exit")
			}
		})
	}
}

// On a terminal the app's traceback is printed as Python prints it, one
// frame per line (in a log file it is one traceback= field).
func TestTracebackOnTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script") // util-linux: runs a command on a pseudo-terminal
	if err != nil {
		t.Skip("script(1) is not installed")
	}
	dir := t.TempDir()
	writeFile(t, dir, "bad.py", "import no_such_module_web9\n")
	c := exec.Command(scriptBin, "-qec", hornbeam+" start bad:application -k wsgi -b 127.0.0.1:0", "/dev/null")
	c.Dir = dir
	done := make(chan []byte, 1)
	go func() { out, _ := c.CombinedOutput(); done <- out }()
	select {
	case out := <-done:
		s := strings.ReplaceAll(string(out), "\r\n", "\n")
		for _, want := range []string{"\nTraceback (most recent call last):\n  File ", "bad.py\", line 1, in <module>\n    import no_such_module_web9\n"} {
			if !strings.Contains(s, want) {
				t.Fatalf("output lacks %q:\n%s", want, s)
			}
		}
	case <-time.After(20 * time.Second):
		c.Process.Kill()
		t.Fatal("did not exit")
	}
}
