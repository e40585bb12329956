package pybridge_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// TestSoak runs 8 goroutines calling Python (sync, async, failing, timing out)
// for 10 s and checks that every call returns, progress never stalls, and RSS
// stays flat. HORNBEAM_SOAK sets the duration; -short uses 2 s.
func TestSoak(t *testing.T) {
	dur := 10 * time.Second
	if testing.Short() {
		dur = 2 * time.Second
	}
	if s := os.Getenv("HORNBEAM_SOAK"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			dur = d
		}
	}
	var calls atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch i % 8 {
				case 0:
					_, err = call(t, context.Background(), "fail", "x")
					if pe := (*pybridge.Error)(nil); !errors.As(err, &pe) {
						errs <- err
						return
					}
					err = nil
				case 1:
					_, err = call(t, context.Background(), "async_add", g, i)
				case 2:
					_, err = call(t, context.Background(), "echo", strings.Repeat("x", 1000), []any{1, 2.5, nil})
				default:
					_, err = call(t, context.Background(), "add", g, i)
				}
				if err != nil {
					errs <- err
					return
				}
				calls.Add(1)
			}
		}()
	}
	rss := func() int64 {
		b, _ := os.ReadFile("/proc/self/statm")
		f := strings.Fields(string(b))
		pages, _ := strconv.ParseInt(f[1], 10, 64)
		return pages * int64(os.Getpagesize())
	}
	warm := min(dur/5, 2*time.Second)
	time.Sleep(warm)
	base := rss()
	last := calls.Load()
	for end := time.Now().Add(dur - warm); time.Now().Before(end); {
		time.Sleep(500 * time.Millisecond)
		n := calls.Load()
		if n == last {
			close(stop)
			t.Fatalf("no call completed in 500ms after %d calls: deadlock", n)
		}
		last = n
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	grew := rss() - base
	t.Logf("%d calls in %v; RSS %d MiB, grew %d KiB after warm-up", calls.Load(), dur, base>>20, grew>>10)
	if grew > 16<<20 {
		t.Fatalf("RSS grew %d MiB during the soak", grew>>20)
	}
}
