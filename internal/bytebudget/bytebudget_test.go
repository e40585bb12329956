package bytebudget

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	b := New(100)
	ctx := context.Background()
	if err := b.Acquire(ctx, 150); err != nil { // alone, more than the bound gets in
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.Acquire(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire over the bound: %v, want a wait until the deadline", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Acquire(ctx, 60) }()
	b.Release(150)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter was not woken by a release")
	}
	if err := b.Acquire(ctx, 40); err != nil { // 60 + 40 fits
		t.Fatal(err)
	}
}
