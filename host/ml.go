package host

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/batch"
	"github.com/hornbeam-go/hornbeam/pybridge"
	"github.com/hornbeam-go/hornbeam/state"
	"github.com/hornbeam-go/hornbeam/sysinfo"
)

// MLCache is a node's inference cache (hornbeam_ml.cached_inference): its own,
// or, in a worker process, its supervisor's.
type MLCache interface {
	CacheGet(prefix, key string) ([]byte, bool, error)
	CachePut(prefix, key string, value []byte, ttl time.Duration) error
	CacheStats() (state.CacheStats, error)
	CacheClear(prefix string) error
}

// LocalCache adapts a state.Cache to MLCache.
type LocalCache struct{ *state.Cache }

func (c LocalCache) CacheGet(prefix, key string) ([]byte, bool, error) {
	v, ok := c.Get(prefix, key)
	return v, ok, nil
}
func (c LocalCache) CachePut(prefix, key string, v []byte, ttl time.Duration) error {
	return c.Put(prefix, key, v, ttl)
}
func (c LocalCache) CacheStats() (state.CacheStats, error) { return c.Stats(), nil }
func (c LocalCache) CacheClear(prefix string) error        { c.Clear(prefix); return nil }

// capabilities are what a node announces for selection by nodes_with.
func capabilities(ctx context.Context, gpus *sysinfo.GPUCache) map[string]float64 {
	si := sysinfo.CollectWithGPUs(ctx, gpus.Get(ctx))
	return map[string]float64{
		"gpu":       float64(si.GPUCount),
		"cpu":       float64(runtime.NumCPU()),
		"memory_gb": float64(si.MemoryTotal) / (1 << 30),
		"memory":    float64(si.MemoryTotal >> 20), // MB, as DAG function costs count it
	}
}

// runBatch runs one batch of a hornbeam_ml.batched function in Python.
func (n *Node) runBatch(ctx context.Context, s batch.Spec, extra []byte, items [][]byte) ([][]byte, error) {
	n.cfg.Metrics.BatchSize(len(items))
	raw := make([]cbor.RawMessage, len(items))
	for i, it := range items {
		raw[i] = it
	}
	if extra == nil {
		extra = []byte{0x80}
	}
	args, err := cbor.Marshal([]any{s.Module, s.Function, cbor.RawMessage(extra), raw})
	if err != nil {
		return nil, err
	}
	// Batches have threads of their own: their callers hold RPC or HTTP
	// threads while they wait, so a batch that needed one could wait forever.
	out, err := n.py.CallOn(ctx, pybridge.LaneBatch, "hornbeam_ml._batching", "run_batch", args)
	if err != nil {
		return nil, err
	}
	var res []cbor.RawMessage
	if err := cbor.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("host: batch result of %s.%s: %w", s.Module, s.Function, err)
	}
	vals := make([][]byte, len(res))
	for i, r := range res {
		vals[i] = r
	}
	return vals, nil
}

// splitBatchArgs reads a call's CBOR arguments as (items list, extra...); ok is
// false when the first argument is not a list.
func splitBatchArgs(args []byte) (items [][]byte, extra []byte, ok bool) {
	var all []cbor.RawMessage
	if err := cbor.Unmarshal(args, &all); err != nil {
		return nil, nil, false
	}
	return splitBatchItems(all)
}

// splitBatchItems is splitBatchArgs on arguments already split.
func splitBatchItems(all []cbor.RawMessage) (items [][]byte, extra []byte, ok bool) {
	if len(all) == 0 {
		return nil, nil, false
	}
	var list []cbor.RawMessage
	if err := cbor.Unmarshal(all[0], &list); err != nil {
		return nil, nil, false
	}
	extra, err := cbor.Marshal(all[1:])
	if err != nil {
		return nil, nil, false
	}
	items = make([][]byte, len(list))
	for i, it := range list {
		items[i] = it
	}
	return items, extra, true
}

func joinBatch(vals [][]byte) ([]byte, error) {
	raw := make([]cbor.RawMessage, len(vals))
	for i, v := range vals {
		raw[i] = v
	}
	return cbor.Marshal(raw)
}

// mlFuncs are the Go functions hornbeam_ml calls.
func (n *Node) mlFuncs() map[string]pybridge.GoFunc {
	return map[string]pybridge.GoFunc{
		"ml_cache_get":      n.pyCacheGet,
		"ml_cache_put":      n.pyCachePut,
		"ml_cache_stats":    n.pyCacheStats,
		"ml_cache_clear":    n.pyCacheClear,
		"ml_batch_register": n.pyBatchRegister,
		"ml_batch":          n.pyBatch,
		"ml_batch_stats":    n.pyBatchStats,
		"members":           n.pyMembers,
	}
}

func cacheError(err error) error {
	if errors.Is(err, state.ErrFull) {
		return &pyError{class: "MemoryError", msg: err.Error()}
	}
	return &pyError{class: "RuntimeError", msg: err.Error()}
}

func (n *Node) pyCacheGet(ctx context.Context, data []byte) ([]byte, error) {
	var a struct {
		_           struct{} `cbor:",toarray"`
		Prefix, Key string
	}
	if err := decodeArgs("cache_get", data, &a); err != nil {
		return nil, err
	}
	v, ok, err := n.cache.CacheGet(a.Prefix, a.Key)
	if err != nil {
		return nil, cacheError(err)
	}
	if !ok {
		return []byte{0xf6}, nil // None
	}
	return cbor.Marshal(v)
}

func (n *Node) pyCachePut(ctx context.Context, data []byte) ([]byte, error) {
	var a struct {
		_           struct{} `cbor:",toarray"`
		Prefix, Key string
		Value       []byte
		TTL         *float64 // seconds
	}
	if err := decodeArgs("cache_put", data, &a); err != nil {
		return nil, err
	}
	var ttl time.Duration
	if a.TTL != nil {
		if *a.TTL <= 0 {
			return nil, &pyError{class: "ValueError", msg: fmt.Sprintf("ttl must be positive, not %v", *a.TTL)}
		}
		ttl = time.Duration(*a.TTL * float64(time.Second))
	}
	if err := n.cache.CachePut(a.Prefix, a.Key, a.Value, ttl); err != nil {
		return nil, cacheError(err)
	}
	return []byte{0xf6}, nil
}

func (n *Node) pyCacheStats(ctx context.Context, data []byte) ([]byte, error) {
	st, err := n.cache.CacheStats()
	if err != nil {
		return nil, cacheError(err)
	}
	return cbor.Marshal(st)
}

func (n *Node) pyCacheClear(ctx context.Context, data []byte) ([]byte, error) {
	var a []string
	if err := decodeArgs("cache_clear", data, &a); err != nil {
		return nil, err
	}
	prefix := ""
	if len(a) > 0 {
		prefix = a[0]
	}
	if err := n.cache.CacheClear(prefix); err != nil {
		return nil, cacheError(err)
	}
	return []byte{0xf6}, nil
}

func (n *Node) pyBatchRegister(ctx context.Context, data []byte) ([]byte, error) {
	var a struct {
		_                struct{} `cbor:",toarray"`
		Module, Function string
		MaxBatch         int
		MaxWaitMS        float64
	}
	if err := decodeArgs("batched", data, &a); err != nil {
		return nil, err
	}
	if a.MaxBatch < 1 || a.MaxWaitMS < 0 {
		return nil, &pyError{class: "ValueError", msg: fmt.Sprintf(
			"batched(max_batch_size=%d, max_wait_ms=%v): want a size of at least 1 and a wait of at least 0", a.MaxBatch, a.MaxWaitMS)}
	}
	n.batcher.Register(batch.Spec{Module: a.Module, Function: a.Function, MaxBatch: a.MaxBatch,
		MaxWait: max(time.Duration(a.MaxWaitMS*float64(time.Millisecond)), time.Microsecond)})
	return []byte{0xf6}, nil
}

// pyBatch is a call of a batched function from Python in this node.
func (n *Node) pyBatch(ctx context.Context, data []byte) ([]byte, error) {
	var a []cbor.RawMessage
	if err := decodeArgs("batched call", data, &a); err != nil {
		return nil, err
	}
	var module, function string
	if len(a) < 3 || cbor.Unmarshal(a[0], &module) != nil || cbor.Unmarshal(a[1], &function) != nil {
		return nil, typeError("batched call: bad arguments")
	}
	spec, ok := n.batcher.Lookup(module, function)
	if !ok {
		return nil, &pyError{class: "RuntimeError", msg: module + "." + function + " is not registered as batched"}
	}
	items, extra, ok := splitBatchItems(a[2:])
	if !ok {
		return nil, typeError("%s.%s takes a list as its first argument", module, function)
	}
	vals, err := n.batcher.Submit(ctx, spec, extra, items)
	if err != nil {
		return nil, batchError(err)
	}
	return joinBatch(vals)
}

// batchError raises a batch's exception in each of its callers, as its own
// class where that can be imported (else RuntimeError).
func batchError(err error) error {
	var pe *pybridge.Error
	switch {
	case errors.As(err, &pe) && !strings.Contains(pe.Type, "."):
		return &pyError{class: pe.Type, msg: pe.Message}
	case errors.As(err, &pe):
		i := strings.LastIndexByte(pe.Type, '.')
		return &pyError{class: pe.Type[:i] + ":" + pe.Type[i+1:], msg: pe.Message}
	case errors.Is(err, batch.ErrBusy):
		return &pyError{class: "hornbeam_erlang:Busy", msg: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		// The call that waited on the batch passed its own deadline.
		return &pyError{class: "TimeoutError", msg: "the batch did not finish before the call's deadline"}
	default:
		return err
	}
}

func (n *Node) pyBatchStats(ctx context.Context, data []byte) ([]byte, error) {
	batches, items := n.batcher.Stats()
	return cbor.Marshal(map[string]int64{"batches": batches, "items": items})
}

// pyMembers lists the other visible nodes with their roles and capabilities.
func (n *Node) pyMembers(ctx context.Context, data []byte) ([]byte, error) {
	b := n.cluster()
	if b == nil {
		return marshal([]any{})
	}
	return cbor.Marshal(b.Members(0))
}
