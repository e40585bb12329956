package bus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// A node at its bound refuses casts: the sender retries for CastWait, then
// gets ErrBusy; casts it took run under CastTimeout and are counted.
func TestCastBackpressure(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := startBus(t, "a@127.0.0.1", "cast")
	b, err := Start(Config{Name: "b@127.0.0.1", Cookie: "cast", ClusterHost: "127.0.0.1", Join: []string{a.ClusterAddr()},
		Handler: echoHandler{}, Logger: quiet, MaxInflight: 3, CastTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitNodes(t, a, "b@127.0.0.1")
	ctx := context.Background()
	for i := range 3 {
		if err := a.Cast(ctx, "b@127.0.0.1", "m", "sleep", nil); err != nil {
			t.Fatalf("cast %d: %v", i, err)
		}
	}
	start := time.Now()
	err = a.Cast(ctx, "b@127.0.0.1", "m", "sleep", nil)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("cast to a full node: %v, want ErrBusy", err)
	}
	if el := time.Since(start); el < 900*time.Millisecond || el > 1400*time.Millisecond {
		t.Errorf("ErrBusy after %v, want after about CastWait (1 s)", el)
	}
	// The node's own casts to itself count against the same bound.
	if err := b.Cast(ctx, "b@127.0.0.1", "m", "sleep", nil); !errors.Is(err, ErrBusy) && err != nil {
		t.Fatalf("cast to itself: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.CastStats().Failed < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("casts past CastTimeout not counted as failed: %+v", b.CastStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := b.CastStats()
	if st.Refused == 0 {
		t.Errorf("refusals not counted: %+v", st)
	}
	// Room again: a cast is taken and runs.
	if err := a.Cast(ctx, "b@127.0.0.1", "m", "echo", nil); err != nil {
		t.Fatalf("cast after the node drained: %v", err)
	}
	for b.CastStats().Run < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the cast did not run: %+v", b.CastStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
