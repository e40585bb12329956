// Package tests holds the integration tests that run the hornbeam binary as
// separate processes, as users do.
package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// hornbeam is the binary under test: $HORNBEAM_BIN (make test sets it) or one
// built for this run.
var hornbeam string

func TestMain(m *testing.M) {
	// Nodes of tests that run at once must not meet on the shared default
	// port mapper; the mapper tests give each cluster a port of its own.
	os.Setenv("HORNBEAM_MAPPER_PORT", "0")
	hornbeam = os.Getenv("HORNBEAM_BIN")
	if hornbeam == "" {
		dir, err := os.MkdirTemp("", "hornbeam-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		hornbeam = filepath.Join(dir, "hornbeam")
		build := exec.Command("go", "build", "-o", hornbeam, "../cmd/hornbeam")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building hornbeam:", err)
			os.Exit(1)
		}
		rc := m.Run()
		os.RemoveAll(dir)
		os.Exit(rc)
	}
	if abs, err := filepath.Abs(hornbeam); err == nil {
		hornbeam = abs // tests run it from other directories
	}
	os.Exit(m.Run())
}

// result of one hornbeam process.
type result struct {
	code           int
	stdout, stderr string
}

// run starts hornbeam with args in dir, bounded by timeout, and kills its process
// group if it overstays.
func run(t *testing.T, dir string, env []string, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, hornbeam, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("hornbeam %v did not finish in %v\nstdout:\n%s\nstderr:\n%s", args, timeout, out.String(), errb.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("hornbeam %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
