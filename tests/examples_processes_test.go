package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExampleProcesses runs examples/processes/run_demo.sh: the Erlang
// slides' examples, the frequency server, the chat room and the KV router's
// tests, each against real nodes the script starts and stops by PID.
func TestExampleProcesses(t *testing.T) {
	script, _ := filepath.Abs("../examples/processes/run_demo.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(), "HORNBEAM_BIN="+hornbeam)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// SIGTERM lets the script's trap stop its nodes; the group is killed after.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err != nil {
		t.Fatalf("run_demo.sh: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"Shell got 'bar@127.0.0.1'", "Shell got 'hi'",
		"allocated ('ok', 10) ('ok', 11) then ('error', 'no_frequency')", "allocate again ('ok', 10)",
		"sent to 3", "('heard', 'user0', ('alice', 'hello, room'))", "3 passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
