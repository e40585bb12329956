package sysinfo

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

const mib = 1 << 20

const sample1 = "0, NVIDIA H100 80GB HBM3, 81559, 4, 0\n"

const sample8 = `0, NVIDIA A100-SXM4-80GB, 81920, 71234, 98
1, NVIDIA A100-SXM4-80GB, 81920, 71234, 97
2, NVIDIA A100-SXM4-80GB, 81920, 512, 0
3, NVIDIA A100-SXM4-80GB, 81920, 512, 0
4, NVIDIA A100-SXM4-80GB, 81920, 40000, 55
5, NVIDIA A100-SXM4-80GB, 81920, 40000, 54
6, NVIDIA A100-SXM4-80GB, 81920, 0, 0
7, NVIDIA A100-SXM4-80GB, 81920, 0, 100
`

func a100(i int, used uint64, util int) GPU {
	return GPU{Index: i, Name: "NVIDIA A100-SXM4-80GB", MemoryTotal: 81920 * mib, MemoryUsed: used * mib, Utilization: util}
}

func TestParseNvidiaSMI(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []GPU
		wantErr bool
	}{
		{name: "empty", out: "", want: []GPU{}},
		{name: "blank lines", out: "\n  \n\r\n", want: []GPU{}},
		{
			name: "one GPU",
			out:  sample1,
			want: []GPU{{Index: 0, Name: "NVIDIA H100 80GB HBM3", MemoryTotal: 81559 * mib, MemoryUsed: 4 * mib, Utilization: 0}},
		},
		{
			name: "one GPU CRLF no trailing newline",
			out:  "0, Tesla T4, 15360, 0, 12\r",
			want: []GPU{{Index: 0, Name: "Tesla T4", MemoryTotal: 15360 * mib, Utilization: 12}},
		},
		{
			name: "eight GPUs",
			out:  sample8,
			want: []GPU{
				a100(0, 71234, 98), a100(1, 71234, 97), a100(2, 512, 0), a100(3, 512, 0),
				a100(4, 40000, 55), a100(5, 40000, 54), a100(6, 0, 0), a100(7, 0, 100),
			},
		},
		{
			name: "N/A fields",
			out:  "0, NVIDIA GeForce RTX 3090, 24576, [N/A], [N/A]\n1, NVIDIA Graphics Device, [N/A], [N/A], [N/A]\n",
			want: []GPU{
				{Index: 0, Name: "NVIDIA GeForce RTX 3090", MemoryTotal: 24576 * mib, MemoryUsed: 0, Utilization: -1},
				{Index: 1, Name: "NVIDIA Graphics Device", Utilization: -1},
			},
		},
		{
			name: "garbage lines around rows",
			out: "WARNING: infoROM is corrupted at gpu 0000:3B:00.0\n" +
				sample1 +
				"not, a, gpu, row, at all\n" +
				"1, NVIDIA H100 80GB HBM3, 81559, 81000, 100\n" +
				"\n",
			want: []GPU{
				{Index: 0, Name: "NVIDIA H100 80GB HBM3", MemoryTotal: 81559 * mib, MemoryUsed: 4 * mib, Utilization: 0},
				{Index: 1, Name: "NVIDIA H100 80GB HBM3", MemoryTotal: 81559 * mib, MemoryUsed: 81000 * mib, Utilization: 100},
			},
		},
		{
			name: "comma in name",
			out:  "0, Weird, Inc. GPU, 1024, 1, 2\n",
			want: []GPU{{Index: 0, Name: "Weird, Inc. GPU", MemoryTotal: 1024 * mib, MemoryUsed: 1 * mib, Utilization: 2}},
		},
		{
			name:    "driver error only",
			out:     "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
			want:    []GPU{},
			wantErr: true,
		},
		{name: "too few fields", out: "0, NVIDIA H100, 81559\n", want: []GPU{}, wantErr: true},
		{name: "header line only", out: "index, name, memory.total [MiB], memory.used [MiB], utilization.gpu [%]\n", want: []GPU{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNvidiaSMI(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got == nil {
				t.Fatal("got nil slice, want non-nil")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// fakeNvidiaSMI puts an executable nvidia-smi running script first on PATH
// (ahead of any real one), and returns the directory it lives in.
func fakeNvidiaSMI(t *testing.T, script string) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	dir := t.TempDir()
	body := "#!" + sh + "\n" + script + "\n"
	if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func TestDetectGPUs(t *testing.T) {
	tests := []struct {
		name    string
		script  string // "" means no nvidia-smi on PATH
		timeout time.Duration
		want    int
		maxTime time.Duration
	}{
		{name: "no nvidia-smi", want: 0, timeout: 2 * time.Second},
		{name: "one GPU", script: "cat <<'EOF'\n" + sample1 + "EOF", timeout: 2 * time.Second, want: 1},
		{name: "eight GPUs", script: "cat <<'EOF'\n" + sample8 + "EOF", timeout: 2 * time.Second, want: 8},
		{
			name: "checks arguments",
			script: `[ "$1" = "--query-gpu=index,name,memory.total,memory.used,utilization.gpu" ] &&
[ "$2" = "--format=csv,noheader,nounits" ] && [ $# -eq 2 ] || exit 2
echo "` + strings.TrimSpace(sample1) + `"`,
			timeout: 2 * time.Second,
			want:    1,
		},
		{name: "exits 1", script: "echo \"" + strings.TrimSpace(sample1) + "\"\nexit 1", timeout: 2 * time.Second, want: 0},
		{name: "driver failure", script: "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\nexit 9", timeout: 2 * time.Second, want: 0},
		{name: "garbage", script: "echo garbage", timeout: 2 * time.Second, want: 0},
		// sleep is a child of sh holding stdout: killing sh alone must not hang.
		{name: "hangs", script: "sleep 10", timeout: 200 * time.Millisecond, want: 0, maxTime: 2 * time.Second},
		{name: "prints then hangs", script: "echo \"" + strings.TrimSpace(sample1) + "\"\nsleep 10", timeout: 200 * time.Millisecond, want: 0, maxTime: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.script == "" {
				t.Setenv("PATH", t.TempDir())
			} else {
				fakeNvidiaSMI(t, tt.script)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			start := time.Now()
			got := DetectGPUs(ctx)
			elapsed := time.Since(start)
			if got == nil {
				t.Fatal("DetectGPUs returned nil, want non-nil")
			}
			if len(got) != tt.want {
				t.Fatalf("got %d GPUs (%+v), want %d", len(got), got, tt.want)
			}
			if tt.maxTime > 0 && elapsed > tt.maxTime {
				t.Errorf("took %v, want <= %v", elapsed, tt.maxTime)
			}
			for i, g := range got {
				if g.Index != i || g.Name == "" || g.MemoryTotal == 0 {
					t.Errorf("GPU %d = %+v", i, g)
				}
			}
		})
	}
}

func TestCollect(t *testing.T) {
	_, smiErr := exec.LookPath("nvidia-smi")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info := Collect(ctx)
	t.Logf("%+v", info)

	if info.Hostname == "" {
		t.Error("Hostname empty")
	}
	if info.OS == "" || info.Arch == "" {
		t.Errorf("OS/Arch = %q/%q", info.OS, info.Arch)
	}
	if info.CPUCount < 1 {
		t.Errorf("CPUCount = %d, want >= 1", info.CPUCount)
	}
	if !(info.MemoryTotal > info.MemoryAvailable && info.MemoryAvailable > 0) {
		t.Errorf("MemoryTotal %d, MemoryAvailable %d: want total > available > 0", info.MemoryTotal, info.MemoryAvailable)
	}
	if info.Load1 < 0 || info.Load5 < 0 || info.Load15 < 0 {
		t.Errorf("negative load %v %v %v", info.Load1, info.Load5, info.Load15)
	}
	if info.ProcessRSS == 0 {
		t.Error("ProcessRSS = 0")
	}
	if info.Goroutines < 1 {
		t.Errorf("Goroutines = %d", info.Goroutines)
	}
	if info.GPUs == nil {
		t.Fatal("GPUs is nil, want non-nil")
	}
	if info.GPUCount != len(info.GPUs) {
		t.Errorf("GPUCount %d != len(GPUs) %d", info.GPUCount, len(info.GPUs))
	}
	if smiErr != nil && len(info.GPUs) != 0 {
		t.Errorf("no nvidia-smi on PATH but GPUs = %+v", info.GPUs)
	}
}

func TestCollectNoGPUEncodesEmptyList(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	info := Collect(context.Background())
	if info.GPUs == nil || len(info.GPUs) != 0 || info.GPUCount != 0 {
		t.Fatalf("GPUs = %#v, GPUCount %d", info.GPUs, info.GPUCount)
	}
	j, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"gpus":[]`) || !strings.Contains(string(j), `"cpu_count":`) {
		t.Errorf("JSON = %s", j)
	}
	b, err := cbor.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := cbor.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"hostname", "os", "arch", "cpu_count", "memory_total", "memory_available",
		"load1", "load5", "load15", "gpus", "gpu_count", "process_rss", "goroutines"} {
		if _, ok := m[k]; !ok {
			t.Errorf("CBOR map lacks %q: %v", k, m)
		}
	}
	if g, ok := m["gpus"].([]any); !ok || len(g) != 0 {
		t.Errorf("CBOR gpus = %#v, want empty array", m["gpus"])
	}
}

func TestCollectWithGPUs(t *testing.T) {
	gpus := []GPU{a100(0, 1, 2), a100(1, 3, 4)}
	info := CollectWithGPUs(context.Background(), gpus)
	if info.GPUCount != 2 || !reflect.DeepEqual(info.GPUs, gpus) {
		t.Errorf("GPUs %+v count %d", info.GPUs, info.GPUCount)
	}
	if info := CollectWithGPUs(context.Background(), nil); info.GPUs == nil || info.GPUCount != 0 {
		t.Errorf("nil gpus: GPUs %#v count %d", info.GPUs, info.GPUCount)
	}
}

func TestGPUCache(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	// Each run appends a line to count, then prints one GPU slowly enough
	// that concurrent Gets overlap it.
	fakeNvidiaSMI(t, "echo x >> '"+count+"'\nsleep 0.2\necho \""+strings.TrimSpace(sample1)+"\"")
	runs := func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}

	var c GPUCache
	var wg sync.WaitGroup
	results := make([][]GPU, 16)
	for i := range results {
		wg.Go(func() { results[i] = c.Get(context.Background()) })
	}
	wg.Wait()
	for i, r := range results {
		if len(r) != 1 {
			t.Fatalf("Get %d = %+v, want 1 GPU", i, r)
		}
	}
	if n := runs(); n != 1 {
		t.Fatalf("nvidia-smi ran %d times for 16 concurrent Gets, want 1", n)
	}

	// The result is a copy: callers cannot corrupt the cache.
	results[0][0].Name = "changed"
	if got := c.Get(context.Background()); got[0].Name != "NVIDIA H100 80GB HBM3" || runs() != 1 {
		t.Fatalf("after mutating a result: %+v, runs %d", got, runs())
	}

	// A caller whose ctx is already done gets the cached value, no run.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if got := c.Get(done); len(got) != 1 || runs() != 1 {
		t.Fatalf("done ctx: %+v, runs %d", got, runs())
	}

	// After TTL the next Get detects again.
	c.mu.Lock()
	c.TTL = 50 * time.Millisecond
	c.mu.Unlock()
	time.Sleep(60 * time.Millisecond)
	if got := c.Get(context.Background()); len(got) != 1 || runs() != 2 {
		t.Fatalf("after TTL: %+v, runs %d, want 2", got, runs())
	}
}

func TestGPUCacheHangingSMI(t *testing.T) {
	fakeNvidiaSMI(t, "sleep 10")
	c := GPUCache{Timeout: 200 * time.Millisecond}
	start := time.Now()
	if got := c.Get(context.Background()); got == nil || len(got) != 0 {
		t.Fatalf("got %#v, want empty", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get took %v despite 200ms Timeout", d)
	}
	// The empty result is cached: no second 200 ms wait.
	start = time.Now()
	c.Get(context.Background())
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("second Get took %v, want cached", d)
	}
}

func TestGPUCacheCallerCancelNotCached(t *testing.T) {
	fakeNvidiaSMI(t, "sleep 10")
	var c GPUCache
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if got := c.Get(ctx); got == nil || len(got) != 0 {
		t.Fatalf("got %#v, want empty", got)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() {
		t.Error("result of a detection cut short by the caller's ctx was cached")
	}
}
