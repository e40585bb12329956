package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one `hornbeam start` process of a test, in its own process group
// (so that its workers go with it). Its output (stdout and stderr) is kept,
// and its cluster and HTTP addresses are read from its "node started" line.
type proc struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited and been reaped
	cluster string        // HOST:PORT of its cluster listener; "" outside a cluster
	base    string        // http://HOST:PORT of its first bind; "" without an APP

	mu      sync.Mutex
	log     strings.Builder
	started chan [2]string
}

var startedRe = regexp.MustCompile(`msg="node started".* cluster=(\S*) http=(\S*)`)

// Write collects output and spots the "node started" line.
func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Write(b)
	if p.started != nil {
		if m := startedRe.FindStringSubmatch(p.log.String()); m != nil {
			p.started <- [2]string{strings.Trim(m[1], `"`), strings.Trim(m[2], `"`)}
			p.started = nil
		}
	}
	return len(b), nil
}

// startProc runs `hornbeam start ARGS...` in dir (the test's directory when
// "") with env added, and waits for it to start. It is stopped by PID when
// the test ends.
func startProc(t *testing.T, dir string, env []string, args ...string) (*proc, error) {
	t.Helper()
	started := make(chan [2]string, 1)
	p := &proc{cmd: exec.Command(hornbeam, append([]string{"start"}, args...)...), done: make(chan struct{}), started: started}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	select {
	case a := <-started:
		p.cluster = a[0]
		if a[1] != "" {
			p.base = "http://" + strings.Split(a[1], ",")[0]
		}
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("hornbeam %v exited before it started: %v\n%s", args, p.cmd.ProcessState, p.logs())
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("hornbeam %v did not start in 30s:\n%s", args, p.logs())
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, and SIGKILL to the whole group after 15 s (or at once
// to what is left of the group once the process has exited: its workers).
func (p *proc) stop() {
	if !p.exited() {
		syscall.Kill(p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
		}
	}
	syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

// kill sends SIGKILL to the process alone and waits for it.
func (p *proc) kill() {
	syscall.Kill(p.pid(), syscall.SIGKILL)
	<-p.done
}

func (p *proc) count(sub string) int { return strings.Count(p.logs(), sub) }

// waitLog waits until the output holds sub n times.
func (p *proc) waitLog(t *testing.T, sub string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for p.count(sub) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged %d times in %v:\n%s", sub, n, within, p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopProcess sends SIGSTOP to pid and waits until every one of its threads
// is stopped: the kernel stops a process's threads one by one, and a thread
// that has not yet taken the stop can still answer, so a test that relies on
// the process being silent waits for it.
func stopProcess(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if allThreadsStopped(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d: not every thread stopped within 10 s of SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// allThreadsStopped reports whether every thread of pid is in state T
// (stopped by a signal).
func allThreadsStopped(pid int) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return false
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			return false
		}
		if f := statFields(b); len(f) == 0 || f[0] != "T" {
			return false
		}
	}
	return true
}
