// Package pywatch notices changes to the Python files under a directory, for
// hornbeam start --reload. It polls: a second's delay is nothing next to a
// worker's boot, and polling needs no inotify limits and works on every
// filesystem.
package pywatch

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxFiles bounds the files one scan looks at, so a huge tree costs a bounded
// amount of memory and time per poll.
const MaxFiles = 20000

type stamp struct {
	mod  time.Time
	size int64
}

// scanDir returns the .py files under dir (skipping hidden directories,
// __pycache__ and virtual environments) with their modification stamps.
func scanDir(dir string) map[string]stamp {
	out := map[string]stamp{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && (strings.HasPrefix(name, ".") || name == "__pycache__" || name == "node_modules" ||
				fileExists(filepath.Join(path, "pyvenv.cfg"))) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".py") {
			return nil
		}
		if len(out) >= MaxFiles {
			return filepath.SkipAll
		}
		if info, err := d.Info(); err == nil {
			out[path] = stamp{info.ModTime(), info.Size()}
		}
		return nil
	})
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Watch calls onChange with a changed, added or removed file each time the
// .py files under dirs change, polling every interval until ctx ends.
func Watch(ctx context.Context, dirs []string, every time.Duration, onChange func(path string)) {
	scan := func() map[string]stamp {
		all := map[string]stamp{}
		for _, d := range dirs {
			for p, s := range scanDir(d) {
				all[p] = s
			}
		}
		return all
	}
	last := scan()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := scan()
		if changed, ok := diff(last, now); ok {
			onChange(changed)
		}
		last = now
	}
}

func diff(a, b map[string]stamp) (string, bool) {
	for p, s := range b {
		if o, ok := a[p]; !ok || o != s {
			return p, true
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			return p, true
		}
	}
	return "", false
}
