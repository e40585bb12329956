package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hornbeam-go/hornbeam/bus"
)

type goEcho struct{}

func (goEcho) Call(_ context.Context, _, _ string, args []byte) ([]byte, error) { return args, nil }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// busChild is the serving process of the Go-to-Go bus measurement.
func busChild() {
	b, err := bus.Start(bus.Config{Name: "gosrv@127.0.0.1", Cookie: "bench", ClusterHost: "127.0.0.1",
		Handler: goEcho{}, Logger: quietLog(), InsecureRoutes: os.Getenv("HORNBEAM_INSECURE_ROUTES") == "1"})
	if err != nil {
		panic(err)
	}
	fmt.Println(b.ClusterAddr())
	bufio.NewReader(os.Stdin).ReadString('\n')
	b.Close()
}

// busGoToGo measures bus.Call between two processes with a Go echo handler:
// the cluster layer's cost without Python on either side. insecure turns
// route TLS off on both sides, to measure what it costs.
func busGoToGo(insecure bool) (p50, p99 time.Duration, perSec float64) {
	var env []string
	if insecure {
		env = append(env, "HORNBEAM_INSECURE_ROUTES=1")
	}
	addr, stop := startChild("-bus-child", env...)
	defer stop()
	b, err := bus.Start(bus.Config{Name: "gocli@127.0.0.1", Cookie: "bench", ClusterHost: "127.0.0.1",
		Join: []string{addr}, Logger: quietLog(), InsecureRoutes: insecure})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	args := []byte{0x81, 0x45, 'h', 'e', 'l', 'l', 'o'}
	ctx := context.Background()
	call := func() {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := b.Call(c, "gosrv@127.0.0.1", "m", "echo", args); err != nil {
			panic(err)
		}
		cancel()
	}
	p50, p99, _ = latencies(call, 2000, 20000)
	return p50, p99, throughput(call, 32, 3, 2*time.Second)
}

// startChild runs this program with flag as a child process that prints its
// address and serves until stop closes its stdin; env is added to ours.
func startChild(flag string, env ...string) (addr string, stop func()) {
	self, _ := os.Executable()
	child := exec.Command(self, flag)
	child.Env = append(os.Environ(), env...)
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		panic(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	return strings.TrimSpace(line), func() { stdin.Close(); child.Wait() }
}
