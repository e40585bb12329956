package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hornbeam-go/hornbeam/bus"
)

type goEcho struct{}

func (goEcho) Call(_ context.Context, _, _ string, args []byte) ([]byte, error) { return args, nil }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// busChild is the serving process of the Go-to-Go bus measurement.
func busChild() {
	b, err := bus.Start(bus.Config{Name: "gosrv@127.0.0.1", Cookie: "bench", ClusterHost: "127.0.0.1",
		Handler: goEcho{}, Logger: quietLog()})
	if err != nil {
		panic(err)
	}
	fmt.Println(b.ClusterAddr())
	bufio.NewReader(os.Stdin).ReadString('\n')
	b.Close()
}

// busGoToGo measures bus.Call between two processes with a Go echo handler:
// the cluster layer's cost without Python on either side.
func busGoToGo() (p50, p99 time.Duration, perSec float64) {
	self, _ := os.Executable()
	child := exec.Command(self, "-bus-child")
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		panic(err)
	}
	defer func() { stdin.Close(); child.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	b, err := bus.Start(bus.Config{Name: "gocli@127.0.0.1", Cookie: "bench", ClusterHost: "127.0.0.1",
		Join: []string{strings.TrimSpace(line)}, Logger: quietLog()})
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
	for range 2000 {
		call()
	}
	n := 20000
	d := make([]time.Duration, n)
	for i := range d {
		t0 := time.Now()
		call()
		d[i] = time.Since(t0)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	var rates []float64
	for range 3 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		stop := time.Now().Add(2 * time.Second)
		start := time.Now()
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := 0
				for time.Now().Before(stop) {
					call()
					k++
				}
				mu.Lock()
				total += k
				mu.Unlock()
			}()
		}
		wg.Wait()
		rates = append(rates, float64(total)/time.Since(start).Seconds())
	}
	sort.Float64s(rates)
	return d[n/2], d[n*99/100], rates[1]
}
