package tests

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotDir is where screenshots are kept: $HORNBEAM_SCREENSHOT_DIR, else
// the test's temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("HORNBEAM_SCREENSHOT_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}

// browser starts headless Chromium for the test; it is stopped when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (make deps installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// pageRows reads the node table the page shows now: name -> [status, req/s].
const pageRows = `Object.fromEntries([...document.querySelectorAll("#nodes tbody tr")].map(
  tr => [tr.dataset.node, [tr.dataset.status, tr.children[7].textContent]]))`

// waitPage evaluates pageRows until ok accepts it, within d.
func waitPage(t *testing.T, ctx context.Context, d time.Duration, what string, ok func(map[string][2]string) bool) map[string][2]string {
	t.Helper()
	deadline := time.Now().Add(d)
	var rows map[string][2]string
	for {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](pageRows))
		if err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		rows = map[string][2]string{}
		json.Unmarshal(raw, &rows)
		if ok(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed %s; it shows %v", what, rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func TestDashboardInChromium(t *testing.T) {
	cookie := "dash-obs13"
	a, err := startProc(t, opsdir(), nil, "opsapp", "-b", "127.0.0.1:0", "--name", "da-obs13@127.0.0.1", "--cookie", cookie,
		"--metrics-bind", "127.0.0.1:0", "--role", "web")
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, "db-obs13@127.0.0.1", cookie, "--join", a.cluster, "--role", "gpu")
	c := startNode(t, "dc-obs13@127.0.0.1", cookie, "--join", a.cluster)
	a.waitLog(t, "msg=nodeup", 2, 15*time.Second)
	base := metricsBase(t, a)
	aName := "da-obs13@127.0.0.1"

	// Requests to a's app while the page watches, so it has rates to show.
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			fetch(a.base + "/")
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { stop.Store(true); <-done }()

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#node="+aName)); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, 30*time.Second, "three nodes up and a's requests per second", func(r map[string][2]string) bool {
		return len(r) == 3 && r[aName][0] == "up" && r[b.name][0] == "up" && r[c.name][0] == "up" &&
			r[aName][1] != "–" && r[aName][1] != "" && r[aName][1] != "0.0"
	})
	// Let the detail's time series gather a few points.
	time.Sleep(5 * time.Second)
	detail, _ := chromedp.Run(ctx, chromedp.Text("#detail-name"))
	if detail != aName {
		t.Errorf("node detail shows %q, want %s", detail, aName)
	}
	screenshot(t, ctx, "dashboard-up.png")

	// The page marks a killed node down by itself (no reload).
	c.kill()
	rows := waitPage(t, ctx, 30*time.Second, c.name+" down", func(r map[string][2]string) bool {
		return r[c.name][0] == "down"
	})
	if rows[aName][0] != "up" || rows[b.name][0] != "up" {
		t.Errorf("after kill -9 of %s the page shows %v", c.name, rows)
	}
	summary, _ := chromedp.Run(ctx, chromedp.Text("#summary"))
	if want := "3 nodes: 2 up, 1 down"; len(summary) < len(want) || summary[:len(want)] != want {
		t.Errorf("summary %q, want %q...", summary, want)
	}
	screenshot(t, ctx, "dashboard-down.png")
}
