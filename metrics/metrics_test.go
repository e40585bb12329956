package metrics

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func total(t *testing.T, s *Set, name, label string) float64 {
	t.Helper()
	mfs, err := s.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if label != "" && labelValue(m.Label, label) == "" {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func labelValue(ls []*dto.LabelPair, v string) string {
	for _, l := range ls {
		if l.GetName()+"="+l.GetValue() == v {
			return v
		}
	}
	return ""
}

func TestNilSetCountsNothing(t *testing.T) {
	var s *Set
	s.HTTPBegin()
	s.HTTPEnd(200, time.Millisecond)
	s.RPCCall(OK, time.Millisecond)
	s.RPCServed(Busy)
	s.RPCCast(NodeDown)
	s.NodeDown()
	s.BatchSize(3)
	s.WorkerRestart()
	s.GaugeFunc("x", "x", func() float64 { return 1 })
	if s.Totals() != nil {
		t.Error("a nil Set has totals")
	}
}

func TestOutcomesAndStatusLabels(t *testing.T) {
	s := New(Single)
	for _, c := range []struct {
		status int
		n      int
	}{{200, 3}, {404, 2}, {503, 1}, {999, 1}, {0, 1}} {
		for range c.n {
			s.HTTPBegin()
			s.HTTPEnd(c.status, time.Millisecond)
		}
	}
	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"hornbeam_http_requests_total", "", 8},
		{"hornbeam_http_requests_total", "status=200", 3},
		{"hornbeam_http_requests_total", "status=404", 2},
		{"hornbeam_http_requests_total", "status=other", 2},
		{"hornbeam_http_in_flight", "", 0},
		{"hornbeam_http_request_duration_seconds", "", 8},
	} {
		if got := total(t, s, c.name, c.label); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.label, got, c.want)
		}
	}
	s.RPCCall(Timeout, time.Second)
	s.RPCCall(Result(42), time.Second) // out of range counts as error
	if got := total(t, s, "hornbeam_rpc_calls_total", "result=timeout"); got != 1 {
		t.Errorf("timeout: %v", got)
	}
	if got := total(t, s, "hornbeam_rpc_calls_total", "result=error"); got != 1 {
		t.Errorf("error: %v", got)
	}
	if tt := s.Totals(); tt["http_requests"] != 8 || tt["http_errors"] != 1 || tt["rpc_calls"] != 2 || tt["rpc_errors"] != 2 {
		t.Errorf("totals %v", tt)
	}
}

func TestSupervisorSumsWorkers(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	sup := New(Supervisor)
	sup.AddWorkers(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Two workers in turn (a socket is named by the process id).
	w1, w2 := New(Worker), New(Worker)
	if err := w1.ServeWorker(ctx, dir, log); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		w1.HTTPBegin()
		w1.HTTPEnd(200, time.Millisecond)
	}
	if got := total(t, sup, "hornbeam_http_requests_total", ""); got != 5 {
		t.Fatalf("one worker: %v, want 5", got)
	}
	// The worker leaves: its counters stay in the sum.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := total(t, sup, "hornbeam_http_requests_total", ""); got == 5 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after the worker left: %v, want 5", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	if err := w2.ServeWorker(ctx2, dir, log); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w2.HTTPBegin()
		w2.HTTPEnd(500, time.Millisecond)
	}
	if got := total(t, sup, "hornbeam_http_requests_total", ""); got != 8 {
		t.Errorf("a retired and a live worker: %v, want 8", got)
	}
	if got := total(t, sup, "hornbeam_http_request_duration_seconds", ""); got != 8 {
		t.Errorf("histogram count: %v, want 8", got)
	}
	if got := total(t, sup, "hornbeam_http_in_flight", ""); got != 0 {
		t.Errorf("in flight: %v", got)
	}
}

// BenchmarkHTTPRequest is what metrics add to each HTTP request.
func BenchmarkHTTPRequest(b *testing.B) {
	s := New(Single)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.HTTPBegin()
			s.HTTPEnd(200, 300*time.Microsecond)
		}
	})
}

// BenchmarkRPCCall is what metrics add to each call.
func BenchmarkRPCCall(b *testing.B) {
	s := New(Single)
	for b.Loop() {
		s.RPCCall(OK, time.Millisecond)
	}
}
