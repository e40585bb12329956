package cpusched

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// policy reads a thread's or process's policy from a /proc stat file.
func policy(t *testing.T, stat string) string {
	t.Helper()
	b, err := os.ReadFile(stat)
	if err != nil {
		t.Fatal(err)
	}
	return statPolicy(b)
}

// statPolicy is the policy field (the 41st) of a /proc stat line; the
// command name before it may hold spaces, so fields count from its ')'.
func statPolicy(b []byte) string {
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return f[41-3]
}

func TestSetBatchCoversEveryThreadAndChildren(t *testing.T) {
	if err := SetBatch(); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if p := policy(t, filepath.Join("/proc/self/task", e.Name(), "stat")); p != "3" {
			t.Errorf("thread %s has policy %s, want 3 (SCHED_BATCH)", e.Name(), p)
		}
	}
	// A process started afterwards inherits it.
	out, err := exec.Command("cat", "/proc/self/stat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if p := statPolicy(out); p != "3" {
		t.Errorf("a child process has policy %s, want 3", p)
	}
}

// A policy chosen for the process (here SCHED_IDLE, by chrt) is kept.
func TestSetBatchKeepsAChosenPolicy(t *testing.T) {
	if os.Getenv("CPUSCHED_CHILD") == "1" {
		if err := SetBatch(); err != nil {
			t.Fatal(err)
		}
		if p := policy(t, "/proc/thread-self/stat"); p != "5" {
			t.Fatalf("policy %s after SetBatch, want 5 (SCHED_IDLE) kept", p)
		}
		return
	}
	chrt, err := exec.LookPath("chrt")
	if err != nil {
		t.Skip("no chrt")
	}
	cmd := exec.Command(chrt, "-i", "0", os.Args[0], "-test.run=^TestSetBatchKeepsAChosenPolicy$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CPUSCHED_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
