package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// protoDelim is the format a worker hands its figures in: Prometheus's
// length-delimited protobuf, which keeps every value exact.
var protoDelim = expfmt.NewFormat(expfmt.TypeProtoDelim)

// workerTimeout bounds how long a scrape waits for one worker's figures.
const workerTimeout = 2 * time.Second

// maxWorkerFigures bounds what one worker may send (its families are fixed, so
// a few kilobytes are normal).
const maxWorkerFigures = 4 << 20

// ServeWorker hands this worker's figures to its supervisor: it listens on a
// Unix socket in dir (named after the process id) until ctx ends, and writes
// every family to each connection. It returns once listening.
func (s *Set) ServeWorker(ctx context.Context, dir string, log *slog.Logger) error {
	if s == nil {
		return nil
	}
	path := filepath.Join(dir, fmt.Sprintf("worker-%d.sock", os.Getpid()))
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("metrics: worker socket: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close() // removes the socket file
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(workerTimeout))
				if err := s.writeFamilies(c); err != nil {
					log.Debug("metrics: handing figures to the supervisor", "err", err)
				}
			}()
		}
	}()
	return nil
}

func (s *Set) writeFamilies(w io.Writer) error {
	mfs, err := s.reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, protoDelim)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// AddWorkers makes a supervisor's scrapes include the sum of its workers'
// figures, read from the sockets in dir at each scrape. A worker that exited
// keeps its counters and histograms in the sum (so totals never go back),
// its gauges leave it.
func (s *Set) AddWorkers(dir string) {
	s.workers = &workerSums{dir: dir, last: map[string][]*dto.MetricFamily{}}
	s.gather = append(s.gather, s.workers)
}

type workerSums struct {
	dir     string
	mu      sync.Mutex // one scrape at a time: retired and last change together
	last    map[string][]*dto.MetricFamily
	retired []*dto.MetricFamily
}

// Gather reads every worker and sums the figures.
func (ws *workerSums) Gather() ([]*dto.MetricFamily, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	socks, _ := filepath.Glob(filepath.Join(ws.dir, "worker-*.sock"))
	type got struct {
		path string
		mfs  []*dto.MetricFamily
		err  error
	}
	results := make(chan got, len(socks))
	for _, p := range socks {
		go func() {
			mfs, err := readWorker(p)
			results <- got{p, mfs, err}
		}()
	}
	seen := map[string]bool{}
	all := [][]*dto.MetricFamily{ws.retired}
	var errs []error
	for range socks {
		g := <-results
		switch {
		case g.err == nil:
			seen[g.path] = true
			ws.last[g.path] = g.mfs
			all = append(all, g.mfs)
		case errors.Is(g.err, errGone):
		default:
			// Busy or slow: its last figures stand in for it this time.
			seen[g.path] = true
			all = append(all, ws.last[g.path])
			errs = append(errs, g.err)
		}
	}
	for p, mfs := range ws.last {
		if !seen[p] {
			ws.retired = sum([][]*dto.MetricFamily{ws.retired, cumulative(mfs)})
			delete(ws.last, p)
			os.Remove(p) // a crashed worker leaves its socket behind
		}
	}
	all[0] = ws.retired
	out := sum(all)
	if len(errs) > 0 {
		return out, fmt.Errorf("metrics: reading workers: %w", errors.Join(errs...))
	}
	return out, nil
}

// errGone: nobody listens on the socket any more: the worker exited.
var errGone = errors.New("worker gone")

func readWorker(path string) ([]*dto.MetricFamily, error) {
	c, err := net.DialTimeout("unix", path, workerTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errGone, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(workerTimeout))
	dec := expfmt.NewDecoder(io.LimitReader(c, maxWorkerFigures), protoDelim)
	var mfs []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return mfs, nil
			}
			return nil, fmt.Errorf("metrics: worker %s: %w", filepath.Base(path), err)
		}
		mfs = append(mfs, mf)
	}
}

// cumulative keeps the counters and histograms of mfs: what a retired worker
// still contributes.
func cumulative(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		switch mf.GetType() {
		case dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM:
			out = append(out, mf)
		}
	}
	return out
}

// sum adds families of the same name, series by series (same labels):
// counters, gauges and untyped values add, histograms add counts, sums and
// buckets.
func sum(sets [][]*dto.MetricFamily) []*dto.MetricFamily {
	fams := map[string]*dto.MetricFamily{}
	series := map[string]*dto.Metric{}
	for _, set := range sets {
		for _, mf := range set {
			f := fams[mf.GetName()]
			if f == nil {
				f = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type}
				fams[mf.GetName()] = f
			}
			if f.GetType() != mf.GetType() {
				continue // a worker of another version: skip what does not add up
			}
			for _, m := range mf.Metric {
				key := mf.GetName() + "\x00" + labelKey(m)
				acc := series[key]
				if acc == nil {
					acc = proto.Clone(m).(*dto.Metric)
					acc.TimestampMs = nil
					series[key] = acc
					f.Metric = append(f.Metric, acc)
					continue
				}
				addMetric(acc, m)
			}
		}
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.Label {
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}

func addMetric(acc, m *dto.Metric) {
	switch {
	case acc.Counter != nil && m.Counter != nil:
		acc.Counter.Value = proto.Float64(acc.Counter.GetValue() + m.Counter.GetValue())
	case acc.Gauge != nil && m.Gauge != nil:
		acc.Gauge.Value = proto.Float64(acc.Gauge.GetValue() + m.Gauge.GetValue())
	case acc.Untyped != nil && m.Untyped != nil:
		acc.Untyped.Value = proto.Float64(acc.Untyped.GetValue() + m.Untyped.GetValue())
	case acc.Histogram != nil && m.Histogram != nil:
		h, o := acc.Histogram, m.Histogram
		h.SampleCount = proto.Uint64(h.GetSampleCount() + o.GetSampleCount())
		h.SampleSum = proto.Float64(h.GetSampleSum() + o.GetSampleSum())
		byBound := map[float64]uint64{}
		for _, b := range o.Bucket {
			byBound[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		for _, b := range h.Bucket {
			b.CumulativeCount = proto.Uint64(b.GetCumulativeCount() + byBound[b.GetUpperBound()])
		}
	}
}

var _ prometheus.Gatherer = (*workerSums)(nil)
