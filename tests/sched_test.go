package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// threadPolicies counts the threads of pid by scheduling policy, as
// /proc/PID/task/TID/stat gives it ("0" the default, "3" SCHED_BATCH).
func threadPolicies(t *testing.T, pid int) map[string]int {
	t.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		out[statFields(b)[41-3]]++ // the policy is field 41
	}
	return out
}

// A node's threads, Python's among them, and its worker processes run under
// SCHED_BATCH unless --sched-batch=false.
func TestNodeThreadsRunUnderSchedBatch(t *testing.T) {
	own := threadPolicies(t, os.Getpid())
	if own["3"] > 0 {
		t.Skip("the test process already runs under SCHED_BATCH")
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, "3"},
		{"disabled", []string{"--sched-batch=false"}, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"workerapp:app", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0"}, tc.args...)
			s := serveApp(t, webdir(), args...)
			mustFetch(t, s.base+"/gomaxprocs") // a worker serves: its interpreter is up
			pids := append([]int{s.cmd.Process.Pid}, children(s.cmd.Process.Pid)...)
			if len(pids) < 2 {
				t.Fatalf("no worker processes under %d", pids[0])
			}
			for _, pid := range pids {
				got := threadPolicies(t, pid)
				if len(got) != 1 || got[tc.want] == 0 {
					t.Errorf("process %d: threads by policy %v, want all %s", pid, got, tc.want)
				}
			}
		})
	}
}
