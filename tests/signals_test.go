package tests

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// A terminal's Ctrl-C (or systemd's SIGTERM) reaches the whole process
// group: with --workers the node still drains as when the supervisor alone
// is signalled: the request in flight is answered and the lifespan
// shutdown runs in every worker.
func TestWorkersGroupSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGINT, syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := serveApp(t, "", "hostileapp:slow_asgi", "-k", "asgi", "-w", "2", "-b", "127.0.0.1:0", "--pythonpath", webdir())
			p.waitLog(t, "worker ready", 2, 30*time.Second)
			res := make(chan string, 1)
			go func() {
				body, err := fetch(p.base + "/slow")
				res <- fmt.Sprint(body, err)
			}()
			p.waitLog(t, "slow request started", 1, 10*time.Second)
			syscall.Kill(-p.pid(), sig)
			select {
			case got := <-res:
				if got != "done<nil>" {
					t.Fatalf("request in flight: %s\n%s", got, p.logs())
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the request in flight was never answered")
			}
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				t.Fatal("the node did not stop")
			}
			if n := p.count("lifespan shutdown ran"); n != 2 {
				t.Fatalf("lifespan shutdown ran in %d of 2 workers:\n%s", n, p.logs())
			}
		})
	}
}

// A worker that crashes on a request is replaced at once, again and again:
// the node is never dark for longer than a worker's boot.
func TestWorkerCrashRestartsQuickly(t *testing.T) {
	p := serveApp(t, "", "hostileapp:crashing", "-k", "wsgi", "-w", "1", "-b", "127.0.0.1:0", "--pythonpath", webdir())
	p.waitLog(t, "worker ready", 1, 30*time.Second)
	for i := range 8 { // with a backoff doubling from 0.1 s, the 7th waits 6.4 s
		fetch(p.base + "/crash") // the worker dies answering it
		t0 := time.Now()
		for {
			if got, err := fetch(p.base + "/"); err == nil && got == "ok" {
				break
			}
			if time.Since(t0) > 3*time.Second {
				t.Fatalf("crash %d: no answer for %v\n%s", i+1, time.Since(t0), p.logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("crash %d: serving again after %v", i+1, time.Since(t0).Round(time.Millisecond))
	}
}

// Ctrl-C interrupts a script in a blocking call as it does under python3:
// KeyboardInterrupt at once, caught by the script's except.
func TestRunCtrlCInBlockingCall(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "sleeper.py", `
import time
print("sleeping", flush=True)
try:
    time.sleep(30)
except KeyboardInterrupt:
    print("caught", flush=True)
`)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd, sc := startScript(t, ctx, script, "sleeping")
		time.Sleep(100 * time.Millisecond) // into the sleep
		t0 := time.Now()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // a terminal's Ctrl-C
		caught := sc.Scan() && sc.Text() == "caught"
		err := cmd.Wait()
		cancel()
		if !caught || err != nil || time.Since(t0) > 5*time.Second {
			t.Fatalf("caught %v, exit %v, after %v", caught, err, time.Since(t0))
		}
		t.Logf("KeyboardInterrupt caught %v after Ctrl-C", time.Since(t0).Round(time.Millisecond))
	}
}
