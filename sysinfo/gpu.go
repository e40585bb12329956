package sysinfo

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// nvidiaSMIArgs are the arguments DetectGPUs passes to nvidia-smi; the
// column order is what parseNvidiaSMI expects.
var nvidiaSMIArgs = []string{
	"--query-gpu=index,name,memory.total,memory.used,utilization.gpu",
	"--format=csv,noheader,nounits",
}

// DetectGPUs lists the NVIDIA GPUs on this machine by running nvidia-smi
// when it is on PATH. It never fails: no nvidia-smi, a failing or hanging
// nvidia-smi, or unparseable output all yield an empty (non-nil) slice. The
// command is killed when ctx is done, so callers bound it with a timeout
// (about 2 s is plenty). NVML via cgo is deliberately not used: it needs the
// driver headers and cgo.
func DetectGPUs(ctx context.Context) []GPU {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return []GPU{}
	}
	cmd := exec.CommandContext(ctx, path, nvidiaSMIArgs...)
	// If nvidia-smi leaves children holding stdout open, don't wait on them
	// long after the context is done.
	cmd.WaitDelay = 100 * time.Millisecond
	out, err := cmd.Output()
	if err != nil || ctx.Err() != nil {
		return []GPU{}
	}
	gpus, err := parseNvidiaSMI(string(out))
	if err != nil || gpus == nil {
		return []GPU{}
	}
	return gpus
}

// parseNvidiaSMI parses the output of
//
//	nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu --format=csv,noheader,nounits
//
// one GPU a line, e.g. "0, NVIDIA H100 80GB HBM3, 81559, 0, 0". Memory is
// in MiB and is returned in bytes. "[N/A]" (or any unparseable value) means
// 0 for memory and -1 for utilization. Blank lines are skipped, and so are
// lines that are not GPU rows (wrong field count or no integer index), as
// nvidia-smi sometimes prints warnings on stdout. An error is returned only
// when the output has non-blank lines but none of them is a GPU row.
func parseNvidiaSMI(out string) ([]GPU, error) {
	gpus := []GPU{}
	var bad []string
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		g, ok := parseNvidiaSMILine(line)
		if !ok {
			bad = append(bad, line)
			continue
		}
		gpus = append(gpus, g)
	}
	if len(gpus) == 0 && len(bad) > 0 {
		return gpus, fmt.Errorf("sysinfo: no GPU rows in nvidia-smi output (first line %q)", bad[0])
	}
	return gpus, nil
}

func parseNvidiaSMILine(line string) (GPU, bool) {
	fields := strings.Split(line, ",")
	if len(fields) < 5 {
		return GPU{}, false
	}
	// The name is the only free-text column; should it ever contain a
	// comma, the last three fields are still the numeric ones.
	n := len(fields)
	idx, err := strconv.Atoi(strings.TrimSpace(fields[0]))
	if err != nil || idx < 0 {
		return GPU{}, false
	}
	name := strings.TrimSpace(strings.Join(fields[1:n-3], ","))
	g := GPU{
		Index:       idx,
		Name:        name,
		MemoryTotal: mibToBytes(fields[n-3]),
		MemoryUsed:  mibToBytes(fields[n-2]),
		Utilization: -1,
	}
	if u, err := strconv.Atoi(strings.TrimSpace(fields[n-1])); err == nil && u >= 0 {
		g.Utilization = u
	}
	return g, true
}

// mibToBytes converts a MiB value ("81559", possibly "81559.5") to bytes;
// "[N/A]" and other unparseable values give 0.
func mibToBytes(s string) uint64 {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v << 20
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1<<43 {
		return uint64(f * (1 << 20))
	}
	return 0
}

// GPUCache caches DetectGPUs so that frequent callers (node_info, heartbeats)
// run nvidia-smi at most once per TTL. The zero value is ready to use and
// safe for concurrent use; it must not be copied after first use.
type GPUCache struct {
	// TTL is how long a detection result is reused; 0 means 60 s.
	TTL time.Duration
	// Timeout bounds one nvidia-smi run on top of the caller's ctx; 0 means 2 s.
	Timeout time.Duration

	mu       sync.Mutex
	gpus     []GPU
	at       time.Time     // when gpus was detected; zero if never
	inflight chan struct{} // non-nil while a detection runs; closed when done
}

// Get returns the cached GPUs, detecting them first when the cache is empty
// or older than TTL. Only one detection runs at a time; concurrent callers
// wait for it, or, if their ctx ends first, get the previous result (empty
// if none). The result is a fresh copy, never nil. A detection cut short
// because the caller's ctx ended is not cached.
func (c *GPUCache) Get(ctx context.Context) []GPU {
	c.mu.Lock()
	for {
		if !c.at.IsZero() && time.Since(c.at) < c.ttl() {
			gpus := clone(c.gpus)
			c.mu.Unlock()
			return gpus
		}
		ch := c.inflight
		if ch == nil {
			break
		}
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			c.mu.Lock()
			gpus := clone(c.gpus)
			c.mu.Unlock()
			return gpus
		}
		c.mu.Lock()
	}
	ch := make(chan struct{})
	c.inflight = ch
	c.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, c.timeout())
	gpus := DetectGPUs(dctx)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight = nil
	close(ch)
	if ctx.Err() != nil {
		// The caller gave up, so this says nothing about the machine.
		return clone(c.gpus)
	}
	c.gpus, c.at = gpus, time.Now()
	return clone(gpus)
}

func (c *GPUCache) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return 60 * time.Second
}

func (c *GPUCache) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 2 * time.Second
}

func clone(gpus []GPU) []GPU {
	return append([]GPU{}, gpus...)
}
