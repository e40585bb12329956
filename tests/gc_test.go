package tests

import (
	"strconv"
	"strings"
	"testing"
)

// Once the app has started, what is alive (the app, its modules) is out of
// the cyclic collector's reach, so that full collections do not rescan it.
func TestAppObjectsFrozenAfterStartup(t *testing.T) {
	for _, workers := range []string{"0", "2"} {
		t.Run("workers="+workers, func(t *testing.T) {
			s := serveApp(t, webdir(), "workerapp:app", "-k", "asgi", "-w", workers, "-b", "127.0.0.1:0")
			f := strings.Fields(mustFetch(t, s.base+"/gc"))
			if len(f) != 2 {
				t.Fatalf("/gc answered %q", f)
			}
			if n, _ := strconv.Atoi(f[0]); n < 1000 {
				t.Errorf("%d objects frozen, want the app's modules (thousands)", n)
			}
			if f[1] != "False" {
				t.Error("the app function is still among the objects the collector scans")
			}
		})
	}
}
