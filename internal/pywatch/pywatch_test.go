package pywatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app.py", "x = 1\n")
	write("__pycache__/app.cpython-311.py", "")
	write(".venv/lib/mod.py", "")
	changes := make(chan string, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watch(ctx, []string{dir}, 20*time.Millisecond, func(p string) { changes <- p })
	expect := func(what, want string) {
		t.Helper()
		select {
		case got := <-changes:
			if got != filepath.Join(dir, want) {
				t.Fatalf("%s: change %s, want %s", what, got, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: no change seen", what)
		}
	}
	time.Sleep(50 * time.Millisecond)
	write("app.py", "x = 22\n") // a new size: seen even where mtimes are coarse
	expect("edit", "app.py")
	write("pkg/new.py", "")
	expect("new file", "pkg/new.py")
	write("notes.txt", "not python")
	write("__pycache__/other.py", "ignored")
	write(".venv/lib/mod.py", "ignored too")
	os.Remove(filepath.Join(dir, "pkg/new.py"))
	expect("removal", "pkg/new.py")
	select {
	case got := <-changes:
		t.Fatalf("unexpected change %s", got)
	case <-time.After(100 * time.Millisecond):
	}
}
