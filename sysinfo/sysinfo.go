// Package sysinfo reports a node's resources: CPUs, memory, load and GPUs.
//
// GPUs are discovered by running nvidia-smi, not through NVML: binding NVML
// needs cgo and the NVIDIA driver headers, which are out of scope here.
package sysinfo

import (
	"context"
	"os"
	"runtime"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// GPU describes one GPU as reported by nvidia-smi.
type GPU struct {
	Index       int    `cbor:"index" json:"index"`
	Name        string `cbor:"name" json:"name"`
	MemoryTotal uint64 `cbor:"memory_total" json:"memory_total"` // bytes
	MemoryUsed  uint64 `cbor:"memory_used" json:"memory_used"`   // bytes
	Utilization int    `cbor:"utilization" json:"utilization"`   // percent, -1 unknown
}

// Info is a snapshot of a node's resources.
type Info struct {
	Hostname        string  `cbor:"hostname" json:"hostname"`
	OS              string  `cbor:"os" json:"os"`
	Arch            string  `cbor:"arch" json:"arch"`
	CPUCount        int     `cbor:"cpu_count" json:"cpu_count"`               // logical CPUs
	MemoryTotal     uint64  `cbor:"memory_total" json:"memory_total"`         // bytes
	MemoryAvailable uint64  `cbor:"memory_available" json:"memory_available"` // bytes
	Load1           float64 `cbor:"load1" json:"load1"`
	Load5           float64 `cbor:"load5" json:"load5"`
	Load15          float64 `cbor:"load15" json:"load15"`
	GPUs            []GPU   `cbor:"gpus" json:"gpus"` // empty (not nil) when none
	GPUCount        int     `cbor:"gpu_count" json:"gpu_count"`
	ProcessRSS      uint64  `cbor:"process_rss" json:"process_rss"` // bytes, this process
	Goroutines      int     `cbor:"goroutines" json:"goroutines"`
}

// Collect gathers Info now. It never fails: a value that cannot be read is
// left at its zero value (CPUCount falls back to runtime.NumCPU). GPU
// detection runs DetectGPUs and so is bounded by ctx; callers that collect
// often should use a GPUCache and overwrite GPUs/GPUCount from it, or call
// CollectWithGPUs.
func Collect(ctx context.Context) Info {
	return CollectWithGPUs(ctx, DetectGPUs(ctx))
}

// CollectWithGPUs gathers Info like Collect but reports the given GPUs
// (typically from a GPUCache) instead of running nvidia-smi. A nil gpus is
// reported as empty.
func CollectWithGPUs(ctx context.Context, gpus []GPU) Info {
	if gpus == nil {
		gpus = []GPU{}
	}
	info := Info{
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		GPUs:       gpus,
		GPUCount:   len(gpus),
		Goroutines: runtime.NumGoroutine(),
	}
	info.Hostname, _ = os.Hostname()

	if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
		info.CPUCount = n
	} else {
		info.CPUCount = runtime.NumCPU()
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		info.MemoryTotal = vm.Total
		info.MemoryAvailable = vm.Available
	}
	if avg, err := load.AvgWithContext(ctx); err == nil {
		info.Load1, info.Load5, info.Load15 = avg.Load1, avg.Load5, avg.Load15
	}
	if p, err := process.NewProcessWithContext(ctx, int32(os.Getpid())); err == nil {
		if mi, err := p.MemoryInfoWithContext(ctx); err == nil {
			info.ProcessRSS = mi.RSS
		}
	}
	return info
}
