package main

import (
	"errors"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/host"
	"github.com/hornbeam-go/hornbeam/web"
)

// limitFlags bound what a node holds for others: threads, casts, bytes.
type limitFlags struct {
	maxThreads       int
	castTimeout      float64
	maxInflightBytes int64
	stateMaxValue    int
	wsBuffer         int64
}

func (f *limitFlags) add(fs *pflag.FlagSet) {
	fs.IntVar(&f.maxThreads, "max-threads", envInt("HORNBEAM_MAX_THREADS", 0),
		"the most threads each Python pool (rpc, http, batches) grows to when it replaces threads stuck in calls whose callers gave up (0: 4 x --threads)")
	fs.Float64Var(&f.castTimeout, "cast-timeout", envFloat("HORNBEAM_CAST_TIMEOUT", bus.DefaultCastTimeout.Seconds()),
		"seconds a cast this node runs may take; past it the Python code is interrupted, as a call's is at its timeout")
	fs.Int64Var(&f.maxInflightBytes, "max-inflight-bytes", int64(envInt("HORNBEAM_MAX_INFLIGHT_BYTES", 0)),
		"request bytes of the calls and casts a node holds at once, queued or running; beyond, callers get Busy (0: 256 MiB, or 4 x --max-payload if more)")
	fs.IntVar(&f.stateMaxValue, "state-max-value", envInt("HORNBEAM_STATE_MAX_VALUE", host.DefaultStateMaxValue),
		"largest encoded value state_set takes, in bytes; a larger one raises ValueError before it is all encoded")
	fs.Int64Var(&f.wsBuffer, "websocket-max-buffer", int64(envInt("HORNBEAM_WEBSOCKET_MAX_BUFFER", web.DefaultWebSocketBuffer)),
		"bytes of websocket messages read from all clients and not yet taken by the app; a connection that finds it full waits (its client is slowed), then is closed with 1013")
}

func (f *limitFlags) apply(c *host.Config) error {
	if f.maxThreads < 0 || f.castTimeout <= 0 || f.maxInflightBytes < 0 || f.stateMaxValue <= 0 || f.wsBuffer <= 0 {
		return errors.New("--max-threads and --max-inflight-bytes must not be negative; --cast-timeout, --state-max-value and --websocket-max-buffer must be positive")
	}
	if c.Web != nil {
		c.Web.WebSocketBuffer = f.wsBuffer
	}
	c.MaxThreads = f.maxThreads
	c.CastTimeout = time.Duration(f.castTimeout * float64(time.Second))
	c.StateMaxValue = f.stateMaxValue
	inflight := f.maxInflightBytes
	if c.Cluster != nil {
		c.Cluster.CastTimeout = c.CastTimeout
		c.Cluster.MaxInflightBytes = f.maxInflightBytes
		if inflight <= 0 {
			inflight = max(bus.DefaultMaxInflightBytes, 4*int64(c.Cluster.MaxPayload))
		}
	}
	if inflight <= 0 {
		inflight = bus.DefaultMaxInflightBytes
	}
	setMemoryLimit(inflight)
	return nil
}

// setMemoryLimit gives the Go collector a soft limit of twice the bytes of
// calls and casts a node may hold, plus room for the rest of the node, unless
// GOMEMLIMIT is set. Collection runs at GOGC 400 (see gcPercent): fine for a
// small live heap, but under a flood of large casts the garbage of the
// requests already run (a few copies of each) would pile up to 5x the held
// bytes before a collection; the limit makes the collector run sooner there,
// and costs nothing while the heap is small.
func setMemoryLimit(inflight int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(2*inflight + 256<<20)
}
