package handoff

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestSlot(t *testing.T) {
	tests := []struct {
		name  string
		spin  *Spinner
		delay time.Duration
	}{
		{"spinning, fast producer", &Spinner{For: 50 * time.Millisecond, Max: 1}, 0},
		{"spinning, slow producer parks", &Spinner{For: time.Microsecond, Max: 1}, 20 * time.Millisecond},
		{"no spinning", nil, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Slot[int]
			go func() {
				time.Sleep(tt.delay)
				if !s.Deliver(42) {
					t.Error("first delivery refused")
				}
				if s.Deliver(7) {
					t.Error("second delivery accepted")
				}
			}()
			v, err := s.Wait(context.Background(), tt.spin, nil)
			if err != nil || v != 42 {
				t.Fatalf("got %v, %v", v, err)
			}
		})
	}
}

func TestSlotCancelAndStop(t *testing.T) {
	var s Slot[int]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Wait(ctx, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	s.Deliver(1) // a late delivery must not block
	var s2 Slot[int]
	stop := make(chan struct{})
	close(stop)
	if _, err := s2.Wait(context.Background(), nil, stop); !errors.Is(err, ErrStopped) {
		t.Fatalf("got %v", err)
	}
}

func TestSlotRace(t *testing.T) {
	sp := &Spinner{For: 2 * time.Microsecond, Max: 2}
	var wg sync.WaitGroup
	for i := range 2000 {
		var s Slot[int]
		wg.Add(2)
		go func() { defer wg.Done(); s.Deliver(i) }()
		go func() {
			defer wg.Done()
			if v, err := s.Wait(context.Background(), sp, nil); err != nil || v != i {
				t.Errorf("got %v, %v want %d", v, err, i)
			}
		}()
		wg.Wait()
	}
}

func TestSlotAbandon(t *testing.T) {
	t.Run("before delivery", func(t *testing.T) {
		var s Slot[int]
		if v, ok := s.Abandon(); ok {
			t.Fatalf("Abandon returned %d from an empty slot", v)
		}
		if s.Deliver(1) {
			t.Error("a delivery after Abandon was accepted")
		}
	})
	t.Run("after delivery", func(t *testing.T) {
		var s Slot[int]
		s.Deliver(42)
		if v, ok := s.Abandon(); !ok || v != 42 {
			t.Errorf("Abandon = %d, %v; want 42, true", v, ok)
		}
	})
	t.Run("racing delivery", func(t *testing.T) {
		// Each value is either refused by Deliver or handed back by
		// Abandon: never both, never neither.
		for range 2000 {
			var s Slot[int]
			delivered := make(chan bool, 1)
			go func() { delivered <- s.Deliver(7) }()
			v, got := s.Abandon()
			if d := <-delivered; d != got || (got && v != 7) {
				t.Fatalf("Deliver accepted=%v, Abandon returned %d, %v", d, v, got)
			}
		}
	})
}

// TestSlotParkedChannelsReused: parked waiters share channels, used again
// once received from. Some waiters give up (their slot's late delivery
// still sends on its channel); none may then be woken by another slot's
// delivery, or return before its own.
func TestSlotParkedChannelsReused(t *testing.T) {
	const waiters = 64
	for round := range 50 {
		var wg sync.WaitGroup
		for i := range waiters {
			var s Slot[int]
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := i%4 == 0
			release := make(chan struct{})
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-release
				s.Deliver(round*waiters + i)
			}()
			go func() {
				defer wg.Done()
				defer cancel()
				if gaveUp {
					cancel()
				}
				go func() { runtime.Gosched(); close(release) }()
				v, err := s.Wait(ctx, nil, nil)
				switch {
				case gaveUp && err == nil && v != round*waiters+i:
					t.Errorf("a waiter that gave up got %d", v)
				case gaveUp:
				case err != nil || v != round*waiters+i || !s.Done():
					t.Errorf("waiter %d got %d, %v (delivered: %v)", round*waiters+i, v, err, s.Done())
				}
			}()
		}
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			// A channel used again while a send was still in it blocks
			// the next delivery on it.
			t.Fatalf("round %d: a delivery or a waiter is stuck", round)
		}
	}
}
