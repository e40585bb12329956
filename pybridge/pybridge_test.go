package pybridge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
	"github.com/hornbeam-go/hornbeam/state"
)

// One interpreter per process (CPython's rule), shared by every test.
var (
	py    *pybridge.Interpreter
	store *state.Store
)

type timeoutErr struct{ msg string }

func (e timeoutErr) Error() string       { return e.msg }
func (e timeoutErr) PythonClass() string { return "TimeoutError" }
func (e timeoutErr) PythonAttrs() []byte {
	b, _ := cbor.Marshal(map[string]any{"where": "go"})
	return b
}

func TestMain(m *testing.M) {
	dir, _ := filepath.Abs("testdata/py")
	store = state.New(state.Config{})
	var err error
	py, err = pybridge.New(pybridge.Config{
		Threads:    4,
		PythonPath: []string{dir},
		State:      pybridge.LocalState{Store: store},
		Funcs: map[string]pybridge.GoFunc{
			"sleep": func(ctx context.Context, args []byte) ([]byte, error) {
				var a []int
				if err := cbor.Unmarshal(args, &a); err != nil {
					return nil, err
				}
				time.Sleep(time.Duration(a[0]) * time.Millisecond)
				return cbor.Marshal(nil)
			},
			"fail": func(ctx context.Context, args []byte) ([]byte, error) {
				return nil, timeoutErr{"deadline passed"}
			},
			// Its result is its arguments, the C memory itself: what
			// Python gets must have been copied before that is freed.
			"inplace_echo": func(ctx context.Context, args []byte) ([]byte, error) {
				return args, nil
			},
		},
		InPlaceArgs: map[string]bool{"inplace_echo": true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rc := m.Run()
	if err := py.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		rc = 1
	}
	os.Exit(rc)
}

func args(t testing.TB, v ...any) []byte {
	t.Helper()
	if v == nil {
		v = []any{}
	}
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(t testing.TB, ctx context.Context, fn string, a ...any) (any, error) {
	t.Helper()
	out, err := py.Call(ctx, "bridgetest", fn, args(t, a...))
	if err != nil {
		return nil, err
	}
	var v any
	if err := cbor.Unmarshal(out, &v); err != nil {
		t.Fatalf("result of %s is not CBOR: %v", fn, err)
	}
	return v, nil
}

func TestCall(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		fn   string
		args []any
		want any
	}{
		{"add", []any{2, 3}, uint64(5)},
		{"add", []any{"a", "b"}, "ab"},
		{"echo", []any{nil, true, 1.5, []byte("x")}, []any{nil, true, 1.5, []byte("x")}},
		{"noop", nil, nil},
		{"async_noop", nil, nil},
		{"async_add", []any{40, 2}, uint64(42)},
		{"async_add", []any{1, 1}, uint64(2)}, // second call takes the known-async path
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			got, err := call(t, ctx, tt.fn, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		module, fn string
		is         error
		typ, msg   string
	}{
		{"bridgetest", "fail", nil, "ValueError", "boom"},
		{"bridgetest", "async_fail", nil, "KeyError", "boom"},
		{"bridgetest", "unconvertible", nil, "TypeError", "set"},
		{"no_such_module_xyz", "f", pybridge.ErrNoModule, "ModuleNotFoundError", "no_such_module_xyz"},
		{"bridgetest", "nope", pybridge.ErrNoFunction, "AttributeError", "nope"},
		{"bridgetest", "not_callable", pybridge.ErrNoFunction, "AttributeError", "not_callable"},
	}
	for _, tt := range tests {
		t.Run(tt.module+"."+tt.fn, func(t *testing.T) {
			_, err := py.Call(ctx, tt.module, tt.fn, args(t, "boom"))
			var pe *pybridge.Error
			if !errors.As(err, &pe) {
				t.Fatalf("want *pybridge.Error, got %T %v", err, err)
			}
			if pe.Type != tt.typ || !strings.Contains(pe.Message, tt.msg) {
				t.Fatalf("got %s: %s, want %s containing %q", pe.Type, pe.Message, tt.typ, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v, %v) is false", err, tt.is)
			}
			if tt.is == nil && (errors.Is(err, pybridge.ErrNoModule) || errors.Is(err, pybridge.ErrNoFunction)) {
				t.Fatalf("%v must not look like a missing target", err)
			}
			if tt.typ == "ValueError" && !strings.Contains(pe.Traceback, "bridgetest.py") {
				t.Fatalf("traceback does not show the source:\n%s", pe.Traceback)
			}
		})
	}
}

func TestMissingDependencyIsNotBadTarget(t *testing.T) {
	dir := t.TempDir()
	// A module that exists but fails to import is the module's error, not a bad call.
	os.WriteFile(filepath.Join(dir, "brokenmod_hb.py"), []byte("import missing_dep_hb\n"), 0o644)
	if _, err := call(t, context.Background(), "add_path", dir); err != nil {
		t.Fatal(err)
	}
	_, err := py.Call(context.Background(), "brokenmod_hb", "f", args(t))
	var pe *pybridge.Error
	if !errors.As(err, &pe) || pe.Type != "ModuleNotFoundError" || errors.Is(err, pybridge.ErrNoModule) {
		t.Fatalf("got %v", err)
	}
}

func TestDeadlineInterruptsSyncPython(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := call(t, ctx, "spin", "spin:deadline")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("returned after %v", d)
	}
	waitState(t, "spin:deadline", "TimeoutError")

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := call(t, ctx, "spin", "spin:cancel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	waitState(t, "spin:cancel", "KeyboardInterrupt")
}

func TestCancelAsync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := call(t, ctx, "async_sleep", "sleep:cancel", 30); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	waitState(t, "sleep:cancel", "cancelled")
}

func waitState(t *testing.T, key, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, ok := store.Get(key); ok {
			var s string
			cbor.Unmarshal(b, &s)
			if s != want {
				t.Fatalf("%s = %q, want %q", key, s, want)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never set: Python was not interrupted", key)
}

func TestPoolThreadsAreReused(t *testing.T) {
	names := map[string]bool{}
	for range 50 {
		v, err := call(t, context.Background(), "thread_name")
		if err != nil {
			t.Fatal(err)
		}
		names[v.(string)] = true
	}
	if len(names) > 4 {
		t.Fatalf("calls ran on %d distinct threads, want at most the pool's 4", len(names))
	}
}

func TestGoFuncReleasesGIL(t *testing.T) {
	v, err := call(t, context.Background(), "go_sleep_parallel", 4, 200)
	if err != nil {
		t.Fatal(err)
	}
	if el := v.(float64); el > 0.6 {
		t.Fatalf("4 threads waiting 200ms in Go took %.2fs: the GIL was held", el)
	}
	v, err = call(t, context.Background(), "go_error")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(v) != "[TimeoutError deadline passed go]" {
		t.Fatalf("Go error seen in Python as %v", v)
	}
}

// inParallel runs f(g) for g in [0, n) on n goroutines and fails t with the
// errors they return.
func inParallel(t *testing.T, n int, f func(g int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Go(func() {
			if err := f(g); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	inParallel(t, 16, func(g int) error {
		for i := range 200 {
			fn := "add"
			if i%2 == 0 {
				fn = "async_add"
			}
			v, err := call(t, context.Background(), fn, g, i)
			if err != nil {
				return err
			}
			if v.(uint64) != uint64(g+i) {
				return fmt.Errorf("%s(%d,%d) = %v", fn, g, i, v)
			}
		}
		return nil
	})
}

func TestGoFuncAsync(t *testing.T) {
	for _, fn := range []string{"go_async", "go_async_foreign_loop"} {
		v, err := call(t, context.Background(), fn, 20)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		if fmt.Sprint(v) != "[TimeoutError deadline passed go]" {
			t.Fatalf("%s: Go error seen in Python as %v", fn, v)
		}
	}
}

// A Go function that reads its arguments in place, where Python's encoder
// wrote them, gets them whole whichever way it is called, from many threads
// at once, and its result reaches Python before they are freed.
func TestGoFuncInPlaceArgs(t *testing.T) {
	sizes := []any{0, 1, 100, 16 << 10, 64<<10 + 3, 1 << 20}
	inParallel(t, 8, func(int) error {
		for range 5 {
			v, err := call(t, context.Background(), "inplace_echo", sizes)
			if err != nil {
				return err
			}
			if v != true {
				return fmt.Errorf("the answers differ from the arguments: %v", v)
			}
		}
		return nil
	})
}

// The decoder keeps short strings and byte strings in a fixed table and hands
// them out again: whatever the table holds (equal bytes, slot collisions,
// lengths around its limit, non-ASCII text), every value must come back as it
// was sent, and short map keys are the interned strings an app's literals are.
func TestShortStringsDecodeAlike(t *testing.T) {
	ctx := context.Background()
	var items []any
	for _, s := range []string{"", "a", "GET", "é", "ünïcödé", strings.Repeat("k", 31),
		strings.Repeat("k", 32), strings.Repeat("k", 33), strings.Repeat("é", 16)} {
		items = append(items, s, []byte(s))
	}
	// Far more distinct strings than the table has slots, twice over, so that
	// slots are replaced and reused while one message decodes.
	for round := 0; round < 2; round++ {
		for i := 0; i < 600; i++ {
			items = append(items, fmt.Sprintf("key-%d", i), []byte(fmt.Sprintf("val-%d", i)))
		}
	}
	mapping := map[string]any{"type": 1, "http_version": 2, "query_string": 3, strings.Repeat("q", 32): 4}
	for i := 0; i < 3; i++ {
		got, err := call(t, ctx, "decoded_strings", items, mapping)
		if err != nil {
			t.Fatal(err)
		}
		pair := got.([]any)
		values := pair[0].([]any)
		if len(values) != len(items) {
			t.Fatalf("%d values came back, want %d", len(values), len(items))
		}
		for j, v := range values {
			tv := v.([]any)
			want := "str"
			if _, ok := items[j].([]byte); ok {
				want = "bytes"
			}
			if tv[0] != want || fmt.Sprint(tv[1]) != fmt.Sprint(items[j]) {
				t.Fatalf("item %d: got %s %q, want %s %q", j, tv[0], tv[1], want, items[j])
			}
		}
		if pair[1] != true {
			t.Fatal("a short map key is not the interned string")
		}
	}
}

// A call's arguments are a CBOR array, or a Python tuple as another node's
// Python encodes one; anything else is refused as a TypeError.
func TestCallArgumentShapes(t *testing.T) {
	tuple, _ := cbor.Marshal(cbor.Tag{Number: 0x48420001, Content: []any{2, 3}})
	array, _ := cbor.Marshal([]any{2, 3})
	notArgs, _ := cbor.Marshal(map[string]int{"a": 2})
	for _, tc := range []struct {
		name    string
		args    []byte
		want    uint64
		errType string
	}{
		{"array", array, 5, ""},
		{"tuple", tuple, 5, ""},
		{"a map", notArgs, 0, "TypeError"},
		{"trailing bytes", append(array[:len(array):len(array)], 0x01), 0, "ValueError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := py.Call(context.Background(), "bridgetest", "add", tc.args)
			var pe *pybridge.Error
			switch {
			case tc.errType != "":
				if !errors.As(err, &pe) || pe.Type != tc.errType {
					t.Fatalf("got %v, want a %s", err, tc.errType)
				}
			case err != nil:
				t.Fatal(err)
			default:
				var got uint64
				if err := cbor.Unmarshal(out, &got); err != nil || got != tc.want {
					t.Fatalf("got %x (%v), want %d", out, err, tc.want)
				}
			}
		})
	}
}

// TestAsyncCallRunsInATask: a coroutine called from Go runs in a real asyncio
// Task, from its first step to its last (what asyncio.timeout and anyio's
// cancel scopes need), and its outcome, whether it returns or raises, with or
// without suspending first, reaches Go exactly as it was.
func TestAsyncCallRunsInATask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := call(t, ctx, "watch_loop_errors"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fn       string
		args     []any
		want     string // the result, printed; empty when an error is expected
		errType  string
		errMatch string
	}{
		{fn: "task_facts", want: "[true true true task_facts]"},
		{fn: "task_timeout", errType: "TimeoutError"},
		{fn: "anyio_move_on", want: "true"},
		{fn: "fail_at_once", args: []any{"now"}, errType: "KeyError", errMatch: "now"},
		{fn: "async_fail", args: []any{"later"}, errType: "KeyError", errMatch: "later"},
		{fn: "async_add", args: []any{2, 3}, want: "5"},
		// Each call has a context of its own, whether it waits or not.
		{fn: "context_fresh", args: []any{"first"}, want: "unset"},
		{fn: "context_fresh", args: []any{"second"}, want: "unset"},
		{fn: "context_kept", args: []any{"kept"}, want: "kept"},
		{fn: "context_fresh", args: []any{"third"}, want: "unset"},
		// A call that cancels its own task, or raises CancelledError, ends
		// as it would in a task; the calls after it run as usual.
		{fn: "cancel_own_task", want: "cancelled at the await"},
		{fn: "raise_cancelled", errType: "asyncio.exceptions.CancelledError", errMatch: "by the app"},
		{fn: "task_facts", want: "[true true true task_facts]"},
		{fn: "async_add", args: []any{4, 5}, want: "9"},
		{fn: "keep_task", args: []any{"task"}, want: "true"},
		{fn: "runs_in_kept_task", args: []any{"task"}, want: "false"},
		{fn: "runs_in_kept_task", args: []any{"task"}, want: "false"},
		{fn: "close_own_coro", want: "refused"},
		{fn: "async_add", args: []any{1, 1}, want: "2"},
		{fn: "keep_task", args: []any{"coro"}, want: "true"},
		{fn: "runs_in_kept_task", args: []any{"coro"}, want: "false"},
		{fn: "task_name_then_rename", want: "task_name_then_rename"},
		{fn: "task_name_then_rename", want: "task_name_then_rename"},
		{fn: "cancel_own_then_await", args: []any{"future"}, want: "true"},
		{fn: "cancel_own_then_await", args: []any{"task"}, want: "true"},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			got, err := call(t, ctx, tt.fn, tt.args...)
			if tt.errType == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s := fmt.Sprint(got); s != tt.want {
					t.Fatalf("got %s, want %s", s, tt.want)
				}
				return
			}
			var pe *pybridge.Error
			if !errors.As(err, &pe) || pe.Type != tt.errType || !strings.Contains(pe.Message, tt.errMatch) {
				t.Fatalf("got %v, want %s containing %q", err, tt.errType, tt.errMatch)
			}
		})
	}
	// A task factory the app installs makes the tasks of later calls.
	for _, on := range []bool{true, false} {
		if _, err := call(t, ctx, "set_task_factory", on); err != nil {
			t.Fatal(err)
		}
		got, err := call(t, ctx, "made_by_factory")
		if err != nil || got != on {
			t.Fatalf("factory installed %v: made by it: %v, %v", on, got, err)
		}
	}
	// An exception that went to Go was retrieved: the loop does not also log
	// it as never retrieved when its task is collected.
	got, err := call(t, ctx, "loop_errors")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(got); s != "[]" {
		t.Fatalf("the loop reported %s", s)
	}
}

// TestWaitingCallsLeaveBoundedTasks: coroutines that wait each keep a task
// while they wait; once they are done, at most 256 idle tasks stay for the
// calls to come.
func TestWaitingCallsLeaveBoundedTasks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := call(t, ctx, "async_sleep", fmt.Sprintf("bounded:%d", i), 0.2)
			if err == nil && got != "slept" {
				err = fmt.Errorf("got %v", got)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := call(t, ctx, "tasks_alive")
	if err != nil {
		t.Fatal(err)
	}
	if alive, ok := got.(uint64); !ok || alive > 256+8 {
		t.Fatalf("%v tasks alive after %d waiting calls ended", got, n)
	}
}

// TestTaskOfAnEndedCallReachesNoLaterCall: a call runs in a task that later
// calls may run in too, once nothing of it is left there; what a call did to
// its task never reaches another call.
func TestTaskOfAnEndedCallReachesNoLaterCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// blocked runs calls in one batch of the loop: those started by start,
	// once each is waiting for its result, then what then adds.
	blocked := func(then func(), start ...func()) {
		t.Helper()
		key := fmt.Sprintf("block:%d", time.Now().UnixNano())
		done := make(chan error, 1)
		go func() {
			_, err := call(t, ctx, "block_loop", key)
			done <- err
		}()
		waitState(t, key, "blocked")
		base := py.Inflight()
		for i, s := range start {
			s()
			for py.Inflight() < base+int64(i+1) {
				if ctx.Err() != nil {
					t.Fatal("a call never came to wait")
				}
				time.Sleep(time.Millisecond)
			}
		}
		if then != nil {
			then()
		}
		if err := store.Set(key+":go", []byte{0xf5}, 0); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a cancel taken back", func(t *testing.T) {
		var wg sync.WaitGroup
		var got any
		var err error
		wg.Add(2)
		blocked(nil, func() {
			go func() { defer wg.Done(); call(t, ctx, "cancel_then_uncancel") }()
		}, func() {
			go func() { defer wg.Done(); got, err = call(t, ctx, "sleep_uncancelled") }()
		})
		wg.Wait()
		if err != nil || got != "slept" {
			t.Fatalf("the call after one that cancelled its task: %v, %v; want slept", got, err)
		}
	})
	t.Run("a task kept weakly", func(t *testing.T) {
		if _, err := call(t, ctx, "keep_task", "weakly"); err != nil {
			t.Fatal(err)
		}
		if got, err := call(t, ctx, "runs_in_kept_task", "weakly"); err != nil || got != false {
			t.Fatalf("a later call ran in a weakly kept task: %v, %v", got, err)
		}
	})
	t.Run("done callbacks and attributes", func(t *testing.T) {
		for i := range 3 {
			if got, err := call(t, ctx, "leave_on_task", i); err != nil || got != nil {
				t.Fatalf("call %d found on its task %v (%v), left by an earlier call", i, got, err)
			}
		}
		if got, err := call(t, ctx, "done_callbacks_run"); err != nil || fmt.Sprint(got) != "[0 1 2]" {
			t.Fatalf("done callbacks run: %v, %v; want each call's once its task ended", got, err)
		}
	})
	t.Run("a call given up while queued", func(t *testing.T) {
		key := fmt.Sprintf("queued-abandoned:%d", time.Now().UnixNano())
		short, cancel := context.WithCancel(ctx)
		defer cancel()
		gaveUp := make(chan error, 1)
		// The caller gives up while the call waits in the queue: its cancel
		// follows it into the same batch.
		blocked(func() {
			cancel()
			if err := <-gaveUp; err != nil {
				t.Fatal(err)
			}
		}, func() {
			go func() {
				_, err := call(t, short, "async_count_run", key)
				if !errors.Is(err, context.Canceled) {
					err = fmt.Errorf("got %v, want its cancel", err)
				} else {
					err = nil
				}
				gaveUp <- err
			}()
		})
		if got, err := call(t, ctx, "run_count", key); err != nil || got != uint64(0) {
			t.Fatalf("a call given up while queued ran %v times (%v), want 0", got, err)
		}
	})
}

// A function found once is found again until what its name refers to
// changes: a reassignment, a new module under the name, a deletion.
func TestCallSeesATargetChange(t *testing.T) {
	ctx := context.Background()
	which := func() (string, error) {
		out, err := py.Call(ctx, "bridgetest_swap", "which", nil)
		var s string
		if err == nil {
			err = cbor.Unmarshal(out, &s)
		}
		return s, err
	}
	steps := []struct{ how, want string }{
		{"make", "first"}, {"", "first"}, {"set", "reassigned"}, {"", "reassigned"},
		{"module", "new module"}, {"", "new module"},
	}
	for _, st := range steps {
		if st.how != "" {
			if _, err := call(t, ctx, "swap_target", st.how); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := which(); err != nil || got != st.want {
			t.Fatalf("after %q: got %q, %v; want %q", st.how, got, err, st.want)
		}
	}
	if _, err := call(t, ctx, "swap_target", "del"); err != nil {
		t.Fatal(err)
	}
	if _, err := which(); !errors.Is(err, pybridge.ErrNoFunction) {
		t.Fatalf("after deleting the function: %v, want ErrNoFunction", err)
	}
}
