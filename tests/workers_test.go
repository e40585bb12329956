package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// serveApp runs `hornbeam start ARGS...` in dir and waits for "node started";
// the process group is stopped by PID when the test ends.
func serveApp(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	p, err := startProc(t, dir, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// children returns the PIDs whose parent is pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if f := statFields(b); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// statFields splits a /proc stat line after "pid (comm)", so that the
// state is f[0], the parent pid f[1], and field N of proc(5) f[N-3]; comm may
// hold spaces, so the cut is at the last ')'.
func statFields(b []byte) []string {
	return strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
}

// fetch GETs url on a fresh connection (so requests spread over workers).
func fetch(url string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), err
}

func mustFetch(t *testing.T, url string) string {
	t.Helper()
	b, err := fetch(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return b
}

func webdir() string { d, _ := filepath.Abs("testdata/web"); return d }

// load requests url from n goroutines until stop is closed and counts the results.
func load(url string, n int, stop chan struct{}) (ok, failed *atomic.Int64, errs chan error, wait func()) {
	ok, failed = new(atomic.Int64), new(atomic.Int64)
	errs = make(chan error, 64)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := fetch(url); err != nil {
					failed.Add(1)
					select {
					case errs <- err:
					default:
					}
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	return ok, failed, errs, wg.Wait
}

func TestWorkersShareStateAndRPC(t *testing.T) {
	cookie := "workers-cookie"
	peer := startNode(t, "peer@127.0.0.1", cookie, "--cluster-port", "0")
	s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0",
		"--name", "multi@127.0.0.1", "--cookie", cookie, "--join", peer.addr)
	s.waitLog(t, "worker ready", 2, 20*time.Second)
	workers := children(s.pid())
	if len(workers) != 2 {
		t.Fatalf("want 2 worker processes, have %v", workers)
	}
	// Both workers answer, and their increments are one node-wide sequence.
	pids := map[string]bool{}
	var last int
	for i := 0; i < 200 && (len(pids) < 2 || i < 40); i++ {
		pids[mustFetch(t, s.base+"/pid")] = true
		n, _ := strconv.Atoi(mustFetch(t, s.base+"/incr"))
		if n != last+1 {
			t.Fatalf("state_incr gave %d after %d: not node-wide", n, last)
		}
		last = n
	}
	if len(pids) != 2 {
		t.Fatalf("requests reached workers %v, want both of %v", pids, workers)
	}
	// The inference cache is node-wide too: every worker gets the first result.
	first := mustFetch(t, s.base+"/cached?k1")
	for range 20 {
		if got := mustFetch(t, s.base+"/cached?k1"); got != first {
			t.Fatalf("cached_inference in another worker recomputed: %s, first %s", got, first)
		}
	}
	if got := mustFetch(t, s.base+"/node"); got != "multi@127.0.0.1" {
		t.Fatalf("node() in a worker = %q", got)
	}
	// rpc_call from the workers to another node, and into the workers from it.
	for range 4 {
		if got := mustFetch(t, s.base+"/rpc?peer@127.0.0.1"); got != strconv.Itoa(peer.pid()) {
			t.Fatalf("rpc_call from a worker to peer = %q, want %d", got, peer.pid())
		}
	}
	var got []int
	script(t, "probe@127.0.0.1", cookie, peer.addr, `
import json
from hornbeam_erlang import rpc_call
print(json.dumps([rpc_call("multi@127.0.0.1", "os", "getpid", []) for _ in range(40)]))
`, 20*time.Second, &got)
	served := map[int]bool{}
	for _, p := range got {
		if !slices.Contains(workers, p) {
			t.Fatalf("a call to the node ran in pid %d, not in a worker %v", p, workers)
		}
		served[p] = true
	}
	if len(served) != 2 {
		t.Errorf("40 calls to the node all ran in one worker: %v", got)
	}
}

func TestWorkersKill9UnderLoad(t *testing.T) {
	s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0")
	s.waitLog(t, "worker ready", 2, 20*time.Second)
	master := s.pid()
	workers := children(master)
	stop := make(chan struct{})
	ok, failed, errs, wait := load(s.base+"/pid", 4, stop)
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(workers[0], syscall.SIGKILL)
	s.waitLog(t, "worker died; replacing it", 1, 5*time.Second)
	s.waitLog(t, "worker ready", 3, 20*time.Second)
	// After the replacement is ready, every request succeeds.
	before := failed.Load()
	okBefore := ok.Load()
	time.Sleep(time.Second)
	close(stop)
	wait()
	if f := failed.Load() - before; f != 0 {
		t.Errorf("%d requests failed after the replacement was ready: %v", f, <-errs)
	}
	if ok.Load() == okBefore {
		t.Fatal("no request succeeded after the kill")
	}
	// Only requests the killed worker held may fail; the rest are served.
	t.Logf("%d ok, %d failed around the kill", ok.Load(), before)
	if before > 8 {
		t.Errorf("%d requests failed around the kill of one worker", before)
	}
	now := children(master)
	if len(now) != 2 || slices.Contains(now, workers[0]) {
		t.Errorf("workers after the kill: %v (before %v)", now, workers)
	}
}

func TestWorkersSignals(t *testing.T) {
	s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0")
	s.waitLog(t, "worker ready", 2, 20*time.Second)
	master := s.pid()
	first := children(master)

	// SIGHUP replaces every worker while the node serves without a failure.
	stop := make(chan struct{})
	_, failed, errs, wait := load(s.base+"/pid", 4, stop)
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(master, syscall.SIGHUP)
	s.waitLog(t, "worker stopped", 2, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during the reload: %v", n, <-errs)
	}
	reloaded := children(master)
	if len(reloaded) != 2 || slices.ContainsFunc(reloaded, func(p int) bool { return slices.Contains(first, p) }) {
		t.Fatalf("workers after SIGHUP %v, before %v", reloaded, first)
	}

	syscall.Kill(master, syscall.SIGTTIN)
	s.waitLog(t, "worker ready", 5, 20*time.Second)
	if n := len(children(master)); n != 3 {
		t.Fatalf("%d workers after SIGTTIN, want 3", n)
	}
	// Signals of one kind do not queue: send each after the last took effect.
	for i := range 2 {
		syscall.Kill(master, syscall.SIGTTOU)
		s.waitLog(t, "worker stopped", 3+i, 20*time.Second)
	}
	syscall.Kill(master, syscall.SIGTTOU) // one too many: the last worker stays
	time.Sleep(500 * time.Millisecond)
	if n := len(children(master)); n != 1 || s.count("removing a worker") != 2 {
		t.Fatalf("%d workers after 3 SIGTTOU from 3, want 1:\n%s", n, s.logs())
	}
	mustFetch(t, s.base+"/pid")
}

// Workers share the CPUs, each running Go on its share unless GOMAXPROCS
// says otherwise.
func TestWorkersShareTheCPUs(t *testing.T) {
	want := strconv.Itoa(max(1, runtime.NumCPU()/2-1)) // a CPU of each share left to Python
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		want = v
	}
	s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0")
	if got := mustFetch(t, s.base+"/gomaxprocs"); got != want {
		t.Errorf("a worker of two on %d CPUs has GOMAXPROCS %q, want %q", runtime.NumCPU(), got, want)
	}
	p, err := startProc(t, webdir(), []string{"GOMAXPROCS=3"}, "workerapp:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustFetch(t, p.base+"/gomaxprocs"); got != "3" {
		t.Errorf("with GOMAXPROCS=3 a worker has %q", got)
	}
}

func TestWorkersMaxRequests(t *testing.T) {
	s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "--max-requests", "25", "--max-requests-jitter", "5", "-b", "127.0.0.1:0")
	pids := map[string]int{}
	for range 100 {
		pids[mustFetch(t, s.base+"/pid")]++ // the socket stays open while a worker is replaced: no failure
	}
	if len(pids) < 3 {
		t.Fatalf("100 requests at --max-requests 25..30 were served by %d workers: %v", len(pids), pids)
	}
	for pid, n := range pids {
		// One more may come on a connection accepted before the worker
		// stopped accepting.
		if n > 31 {
			t.Errorf("worker %s served %d requests, over --max-requests 25 + jitter 5", pid, n)
		}
	}
	if s.count("worker retired") < 3 || s.count("worker died") != 0 {
		t.Errorf("log:\n%s", s.logs())
	}
}

func TestWorkersSIGTERMFinishesRequests(t *testing.T) {
	s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0")
	var wg sync.WaitGroup
	results := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := fetch(s.base + "/slow?1.5")
			if err == nil && body != "slept" {
				err = errors.New("body " + body)
			}
			results <- err
		}()
	}
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(s.pid(), syscall.SIGTERM)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("a request in flight at SIGTERM: %v", err)
		}
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
}

func TestWorkersBootFailure(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "broken.py", "raise ImportError('this app cannot start')\n")
	r := run(t, dir, nil, 60*time.Second, "start", "broken:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0")
	if r.code == 0 || !strings.Contains(r.stderr, "worker failed to boot") || !strings.Contains(r.stderr, "this app cannot start") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	// Workers without an app to serve: a clear error, not a silent single process.
	r = run(t, dir, nil, 20*time.Second, "start", "-w", "2")
	if r.code != 2 || !strings.Contains(r.stderr, "--workers needs an APP") {
		t.Fatalf("-w without an APP: exit %d:\n%s", r.code, r.stderr)
	}
}

func TestWorkersReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	app := func(v string) string {
		return "def application(environ, start_response):\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
			"    return [b'" + v + "']\n"
	}
	writeFile(t, dir, "live.py", app("one"))
	s := serveApp(t, dir, "live", "--reload", "-b", "127.0.0.1:0")
	if got := mustFetch(t, s.base+"/"); got != "one" {
		t.Fatalf("got %q", got)
	}
	time.Sleep(1100 * time.Millisecond) // a new mtime, even on coarse clocks
	writeFile(t, dir, "live.py", app("two"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := fetch(s.base + "/")
		if err != nil {
			t.Fatalf("during reload: %v", err)
		}
		if got == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %q 15s after the change:\n%s", got, s.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSlowHeaders408(t *testing.T) {
	s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "-b", "127.0.0.1:0", "--header-timeout", "0.5")
	addr := strings.TrimPrefix(s.base, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /pid HTTP/1.1\r\nHost: x\r\nX-Slow: "))
	// Another client is served while that one dawdles.
	mustFetch(t, s.base+"/pid")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := io.ReadAll(c)
	if !regexp.MustCompile(`^HTTP/1.1 408 `).Match(resp) {
		t.Fatalf("slow headers: %q, %v", resp, err)
	}
	// A kept-alive connection that goes idle is not cut by the header clock.
	c2, _ := net.Dial("tcp", addr)
	defer c2.Close()
	br := bufio.NewReader(c2)
	for range 2 {
		c2.Write([]byte("GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"))
		r, err := http.ReadResponse(br, nil)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("kept-alive request: %v %v", r, err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		time.Sleep(800 * time.Millisecond)
	}
}

// A reload whose new code cannot start keeps the running workers serving;
// the next good reload replaces them.
func TestWorkersReloadFailureKeepsServing(t *testing.T) {
	dir := t.TempDir()
	app := func(v string) string {
		return "def application(environ, start_response):\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
			"    return [b'" + v + "']\n"
	}
	writeFile(t, dir, "app.py", app("v1"))
	s := serveApp(t, dir, "app", "-w", "2", "-b", "127.0.0.1:0")
	s.waitLog(t, "worker ready", 2, 20*time.Second) // both read the good code
	master := s.pid()
	first := children(master)
	writeFile(t, dir, "app.py", "raise ImportError('broken on purpose')\n")
	syscall.Kill(master, syscall.SIGHUP)
	s.waitLog(t, "reload failed: keeping the running workers", 1, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second) // the failed set's other worker goes
	for now := children(master); !slices.Equal(now, first); now = children(master) {
		if time.Now().After(deadline) {
			t.Fatalf("workers after a failed reload: %v, before %v\n%s", now, first, s.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 10 {
		if got := mustFetch(t, s.base+"/"); got != "v1" {
			t.Fatalf("after a failed reload: %q", got)
		}
	}
	writeFile(t, dir, "app.py", app("v3"))
	syscall.Kill(master, syscall.SIGHUP)
	s.waitLog(t, "worker stopped", 3, 20*time.Second) // the failed set's survivor, then both old ones
	if got := mustFetch(t, s.base+"/"); got != "v3" {
		t.Fatalf("after a good reload: %q\n%s", got, s.logs())
	}
	if n := len(children(master)); n != 2 {
		t.Fatalf("%d workers after the good reload", n)
	}
}
