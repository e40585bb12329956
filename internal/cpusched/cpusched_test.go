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
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return f[41-3]
}

func TestSetBatchCoversEveryThreadAndChildren(t *testing.T) {
	if err := SetBatch(); err != nil {
		t.Fatal(err)
	}
	if !Batch() {
		t.Error("the calling thread is not under SCHED_BATCH")
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
	f := strings.Fields(string(out[strings.LastIndexByte(string(out), ')')+1:]))
	if f[41-3] != "3" {
		t.Errorf("a child process has policy %s, want 3", f[41-3])
	}
}
