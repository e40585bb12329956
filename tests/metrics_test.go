package tests

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var metricsRe = regexp.MustCompile(`metrics=http://(\S+)/metrics`)

// metricsBase waits for p's "serving metrics" line and returns its base URL.
func metricsBase(t *testing.T, p *proc) string {
	t.Helper()
	p.waitLog(t, "serving metrics", 1, 10*time.Second)
	m := metricsRe.FindStringSubmatch(p.logs())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", p.logs())
	}
	return "http://" + m[1]
}

// scrape reads base/metrics in the text format.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, b)
	}
	return string(b)
}

// sample sums the samples of metric whose labels contain every one of want
// (e.g. `result="ok"`); found is false when there is none.
func sample(text, metric string, want ...string) (sum float64, found bool) {
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
			if line[i] == '{' {
				j := strings.IndexByte(line, '}')
				labels = line[i+1 : j]
			}
		}
		if name != metric {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(labels, w)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

// waitSample waits until sample(...) equals want, then returns the scrape.
func waitSample(t *testing.T, base string, want float64, metric string, labels ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := scrape(t, base)
		if v, _ := sample(text, metric, labels...); v == want {
			return text
		} else if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v\n%s", metric, labels, v, want, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetricsHTTPCountedExactly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		workers []string
	}{
		{"single", nil},
		{"workers", []string{"-w", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"workerapp:app", "-k", "asgi", "-b", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0"}, tc.workers...)
			p := serveApp(t, webdir(), args...)
			base := metricsBase(t, p)
			want := 1
			if tc.workers != nil {
				want = 2
				waitSample(t, base, 2, "hornbeam_workers")
			}
			// 25 requests, or more until every worker has answered, so the
			// supervisor's figure is a sum over workers.
			pids := map[string]bool{}
			n := 0
			for n < 25 || len(pids) < want && n < 500 {
				pids[mustFetch(t, p.base+"/pid")] = true
				n++
			}
			if len(pids) < want {
				t.Fatalf("%d requests reached %d worker(s), want %d", n, len(pids), want)
			}
			text := waitSample(t, base, float64(n), "hornbeam_http_requests_total")
			if v, _ := sample(text, "hornbeam_http_requests_total", `status="200"`); v != float64(n) {
				t.Errorf(`hornbeam_http_requests_total{status="200"} = %v, want %d`, v, n)
			}
			if v, _ := sample(text, "hornbeam_http_request_duration_seconds_count"); v != float64(n) {
				t.Errorf("hornbeam_http_request_duration_seconds_count = %v, want %d", v, n)
			}
			if v, ok := sample(text, "hornbeam_http_in_flight"); !ok || v != 0 {
				t.Errorf("hornbeam_http_in_flight = %v (present %v), want 0", v, ok)
			}
			for _, fam := range []string{"go_goroutines", "process_resident_memory_bytes", "hornbeam_python_threads", "hornbeam_state_entries"} {
				if _, ok := sample(text, fam); !ok {
					t.Errorf("%s missing", fam)
				}
			}
			if tc.workers != nil {
				if v, _ := sample(text, "hornbeam_workers"); v != 2 {
					t.Errorf("hornbeam_workers = %v, want 2", v)
				}
				// One process's runtime figures, not one per worker.
				if n := strings.Count(text, "\ngo_goroutines "); n != 1 {
					t.Errorf("go_goroutines appears %d times", n)
				}
			}
			// A later scrape counts nothing twice.
			if v, _ := sample(scrape(t, base), "hornbeam_http_requests_total"); v != float64(n) {
				t.Errorf("second scrape: %v, want %d", v, n)
			}
			if tc.workers != nil {
				// A worker killed: the supervisor counts the restart, and the
				// dead worker's requests stay in the node's total.
				kids := children(p.pid())
				if len(kids) == 0 {
					t.Fatal("no worker processes")
				}
				syscall.Kill(kids[0], syscall.SIGKILL)
				waitSample(t, base, 1, "hornbeam_worker_restarts_total")
				waitSample(t, base, 2, "hornbeam_workers")
				if v, _ := sample(scrape(t, base), "hornbeam_http_requests_total"); v != float64(n) {
					t.Errorf("after a worker died: %v requests, want %d", v, n)
				}
			}
		})
	}
}

func TestMetricsRPCOutcomes(t *testing.T) {
	cookie := "metrics-rpc-obs13"
	b := startNode(t, "mb-obs13@127.0.0.1", cookie)
	mdir, _ := filepath.Abs("testdata/metrics")
	a := startNode(t, "ma-obs13@127.0.0.1", cookie, "--join", b.addr, "--pythonpath", mdir, "--metrics-bind", "127.0.0.1:0")
	base := metricsBase(t, a.proc)
	for _, c := range []struct {
		args, want string
	}{
		{fmt.Sprintf(`["%s", "cltest", "add", [1, 2], 5000]`, b.name), `"ok"`},
		{fmt.Sprintf(`["%s", "cltest", "sleep", [2], 200]`, b.name), `"RPCTimeout"`},
	} {
		r := run(t, "", nil, 60*time.Second, "call", a.name, "mtest", "call", c.args, "--join", b.addr, "--cookie", cookie, "--timeout", "30000")
		if r.code != 0 || strings.TrimSpace(r.stdout) != c.want {
			t.Fatalf("call %s: exit %d, %q (want %s)\n%s", c.args, r.code, r.stdout, c.want, r.stderr)
		}
	}
	text := waitSample(t, base, 2, "hornbeam_rpc_calls_total")
	for _, c := range []struct {
		result string
		want   float64
	}{{"ok", 1}, {"timeout", 1}, {"nodedown", 0}, {"badrpc", 0}, {"remote_error", 0}, {"busy", 0}} {
		if v, ok := sample(text, "hornbeam_rpc_calls_total", `result="`+c.result+`"`); !ok || v != c.want {
			t.Errorf(`hornbeam_rpc_calls_total{result=%q} = %v (present %v), want %v`, c.result, v, ok, c.want)
		}
	}
	if v, _ := sample(text, "hornbeam_rpc_call_duration_seconds_count"); v != 2 {
		t.Errorf("hornbeam_rpc_call_duration_seconds_count = %v, want 2", v)
	}
	// The two tool calls were served by a.
	if v, _ := sample(text, "hornbeam_rpc_served_total", `result="ok"`); v != 2 {
		t.Errorf(`hornbeam_rpc_served_total{result="ok"} = %v, want 2`, v)
	}
	waitSample(t, base, 1, "hornbeam_cluster_nodes")
	// At least one: a loaded machine may also delay a heartbeat enough for
	// a nodedown and nodeup before the shutdown.
	before, _ := sample(scrape(t, base), "hornbeam_cluster_nodedown_total")
	b.stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _ := sample(scrape(t, base), "hornbeam_cluster_nodedown_total")
		if v >= before+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hornbeam_cluster_nodedown_total stayed %v after the peer stopped", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A node serving an app leaves one CPU to the Python thread that runs it:
// Go gets one CPU fewer than a node without an app, at least one, unless
// GOMAXPROCS says otherwise.
func TestGoLeavesACPUForTheApp(t *testing.T) {
	procs := func(t *testing.T, env []string, args ...string) float64 {
		t.Helper()
		p, err := startProc(t, webdir(), env, append(args, "--metrics-bind", "127.0.0.1:0")...)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := sample(scrape(t, metricsBase(t, p)), "go_sched_gomaxprocs_threads")
		if !ok {
			t.Fatal("no go_sched_gomaxprocs_threads")
		}
		return v
	}
	unset := []string{"GOMAXPROCS="} // the test may run under GOMAXPROCS
	all := procs(t, unset)           // no app: Go's own choice
	if all == 1 {
		t.Skip("one CPU: nothing to leave")
	}
	app := []string{"workerapp:app", "-k", "asgi", "-b", "127.0.0.1:0"}
	if got, want := procs(t, unset, app...), max(1, all-1); got != want {
		t.Errorf("serving an app with %v CPUs: GOMAXPROCS %v, want %v", all, got, want)
	}
	if got := procs(t, []string{"GOMAXPROCS=3"}, app...); got != 3 {
		t.Errorf("with GOMAXPROCS=3: %v", got)
	}
}
