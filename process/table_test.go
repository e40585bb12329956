package process

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

func msg(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func val(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPidCBORRoundTrip(t *testing.T) {
	for _, p := range []Pid{{"a@h", 1}, {"web@10.0.0.1", 1 << 40}, {}} {
		b, err := p.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		var q Pid
		if err := q.UnmarshalCBOR(b); err != nil || q != p {
			t.Errorf("%v: got %v, %v", p, q, err)
		}
	}
	for _, bad := range [][]byte{{0x01}, msg(t, cbor.Tag{Number: TagTuple, Content: []any{"a", 1}}),
		msg(t, cbor.Tag{Number: TagPid, Content: []any{"", 3}}), msg(t, cbor.Tag{Number: TagPid, Content: "x"})} {
		var q Pid
		if err := q.UnmarshalCBOR(bad); !errors.Is(err, ErrBadPid) {
			t.Errorf("%x: %v, want ErrBadPid", bad, err)
		}
	}
}

func TestMailboxBoundsAndOrder(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		sizes  []int
		busyAt int // index of the first send that must be ErrBusy; -1 none
	}{
		{"count", Limits{MaxMessages: 3}, []int{1, 1, 1, 1}, 3},
		{"bytes", Limits{MaxBytes: 100}, []int{40, 40, 40}, 2},
		{"room", Limits{MaxMessages: 10, MaxBytes: 1000}, []int{10, 10, 10}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(Config{Node: "n@h", Limits: tc.limits})
			p, _ := tb.New(Adopted, nil)
			for i, n := range tc.sizes {
				err := tb.Send(p, make([]byte, n))
				if (i == tc.busyAt) != errors.Is(err, ErrBusy) {
					t.Fatalf("send %d: %v", i, err)
				}
				if errors.Is(err, ErrBusy) {
					break
				}
			}
		})
	}
	tb := New(Config{Node: "n@h"})
	p, _ := tb.New(Adopted, nil)
	for i := 0; i < 1000; i++ {
		tb.Send(p, msg(t, i))
	}
	for i := 0; i < 1000; i++ {
		_, b, err := tb.Receive(context.Background(), p.ID, 0, true, 0)
		if err != nil || val(t, b) != uint64(i) {
			t.Fatalf("message %d: %v %v", i, val(t, b), err)
		}
	}
	if _, _, err := tb.Receive(context.Background(), p.ID, 0, true, 10*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("empty mailbox: %v", err)
	}
}

func TestSelectiveReceiveAndWait(t *testing.T) {
	tb := New(Config{Node: "n@h"})
	p, _ := tb.New(Adopted, nil)
	for _, v := range []string{"a", "b", "c"} {
		tb.Send(p, msg(t, v))
	}
	seq, b, _ := tb.Receive(context.Background(), p.ID, 1, false, 0) // skip the first
	if val(t, b) != "b" || !tb.Take(p.ID, seq) || tb.Take(p.ID, seq) {
		t.Fatalf("peek after 1: %v", val(t, b))
	}
	_, b, _ = tb.Receive(context.Background(), p.ID, 0, true, 0)
	if val(t, b) != "a" {
		t.Fatalf("head: %v", val(t, b))
	}
	// Wait fires once a later message comes, from the sender's goroutine.
	done := make(chan bool, 1)
	tb.Wait(p.ID, 3, -1, func(ok bool, err error) { done <- ok })
	select {
	case <-done:
		t.Fatal("Wait fired with no new message")
	case <-time.After(20 * time.Millisecond):
	}
	tb.Send(p, msg(t, "d"))
	if !<-done {
		t.Fatal("Wait: not ok")
	}
	tb.Wait(p.ID, 99, 10*time.Millisecond, func(ok bool, err error) { done <- ok })
	if <-done {
		t.Fatal("Wait timeout: ok")
	}
	// A blocked receive wakes with the reason when the process is killed.
	errc := make(chan error, 1)
	go func() { _, _, err := tb.Receive(context.Background(), p.ID, 99, true, -1); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	tb.ExitSignal(Pid{"n@h", 999}, p, "kill")
	var xe *ExitError
	if err := <-errc; !errors.As(err, &xe) || xe.Reason != "killed" {
		t.Fatalf("killed receive: %v", err)
	}
}

func TestMonitorsAndLinks(t *testing.T) {
	tb := New(Config{Node: "n@h"})
	w, _ := tb.New(Adopted, nil)
	a, _ := tb.New(Thread, nil)
	ref, _ := tb.Monitor(w, a)
	tb.Exit(a.ID, "ValueError: x")
	_, b, _ := tb.Receive(context.Background(), w.ID, 0, true, time.Second)
	down := val(t, b).(cbor.Tag).Content.([]any)
	if down[0] != "DOWN" || down[1] != ref || down[4] != "ValueError: x" {
		t.Fatalf("DOWN: %v", down)
	}
	ref, _ = tb.Monitor(w, a)
	_, b, _ = tb.Receive(context.Background(), w.ID, 0, true, time.Second)
	if d := val(t, b).(cbor.Tag).Content.([]any); d[4] != "noproc" {
		t.Fatalf("noproc: %v", d)
	}
	// links: a trapping process gets a message, one that does not is ended.
	x, _ := tb.New(Thread, nil)
	y, _ := tb.New(Thread, &x)
	z, _ := tb.New(Thread, &x)
	tb.TrapExit(y.ID, true)
	tb.Exit(x.ID, "boom")
	_, b, _ = tb.Receive(context.Background(), y.ID, 0, true, time.Second)
	if e := val(t, b).(cbor.Tag).Content.([]any); e[0] != "EXIT" || e[2] != "boom" {
		t.Fatalf("EXIT: %v", e)
	}
	var xe *ExitError
	if _, _, err := tb.Receive(context.Background(), z.ID, 0, true, 0); !errors.As(err, &xe) || xe.Reason != "boom" {
		t.Fatalf("linked: %v", err)
	}
	if ok, _ := tb.IsAlive(context.Background(), z); ok {
		t.Fatal("a killed process is alive")
	}
	if s := tb.Stats(); s.Threads != 2 {
		t.Fatalf("threads: %+v", s)
	}
	tb.Exit(y.ID, "normal")
	tb.Exit(z.ID, "killed")
	if s := tb.Stats(); s.Threads != 0 || s.Processes != 1 {
		t.Fatalf("after exits: %+v", s)
	}
}

func TestThreadLimitAndClose(t *testing.T) {
	tb := New(Config{Node: "n@h", Limits: Limits{MaxThreads: 2}})
	tb.New(Thread, nil)
	tb.New(Thread, nil)
	if _, err := tb.New(Thread, nil); !errors.Is(err, ErrLimit) {
		t.Fatalf("third thread: %v", err)
	}
	if _, err := tb.New(Task, nil); err != nil {
		t.Fatalf("tasks are not counted: %v", err)
	}
	p, _ := tb.New(Adopted, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() { defer wg.Done(); _, _, err = tb.Receive(context.Background(), p.ID, 0, true, -1) }()
	time.Sleep(10 * time.Millisecond)
	tb.Close()
	wg.Wait()
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Reason != "shutdown" {
		t.Fatalf("receive at close: %v", err)
	}
	if _, err := tb.New(Task, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestGroupsLocal(t *testing.T) {
	tb := New(Config{Node: "n@h"})
	a, _ := tb.New(Adopted, nil)
	b, _ := tb.New(Adopted, nil)
	tb.Join("g", a)
	tb.Join("g", b)
	tb.Join("g", b)
	if m := tb.Members("g"); len(m) != 2 || m[0] != a {
		t.Fatalf("members: %v", m)
	}
	if n := tb.Publish("g", msg(t, 1)); n != 2 {
		t.Fatalf("publish: %d", n)
	}
	tb.Exit(a.ID, "normal")
	if m := tb.Members("g"); len(m) != 1 || m[0] != b {
		t.Fatalf("after exit: %v", m)
	}
	// frames from other nodes: a malformed one is dropped, a join is applied
	tb.HandleFrame([]byte{0xff})
	f, _ := encMode.Marshal(&frame{Kind: fPgJoin, From: "o@h", Name: "g", ID: 7})
	tb.HandleFrame(f)
	if m := tb.Members("g"); len(m) != 2 {
		t.Fatalf("remote join: %v", m)
	}
	tb.NodeDown("o@h", "no heartbeat")
	if m := tb.Members("g"); len(m) != 1 {
		t.Fatalf("after nodedown: %v", m)
	}
}
