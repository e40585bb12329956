package pybridge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// extractPackages writes the embedded Python packages once into a directory named
// by their content hash, so that tracebacks, inspect and importlib see real files
// and every process of a node shares one copy. A directory that exists is complete:
// it is renamed into place only after it was written whole.
func extractPackages(fsys fs.FS) (string, error) {
	var files []string
	if err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	}); err != nil {
		return "", fmt.Errorf("pybridge: reading embedded packages: %w", err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, p := range files {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return "", fmt.Errorf("pybridge: reading embedded packages: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]

	base, err := os.UserCacheDir()
	if err != nil || os.MkdirAll(base, 0o755) != nil {
		base = os.TempDir()
	}
	root := filepath.Join(base, "hornbeam")
	dir := filepath.Join(root, "python-"+sum)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("pybridge: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".extract-")
	if err != nil {
		return "", fmt.Errorf("pybridge: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, p := range files {
		if err := copyFile(fsys, p, filepath.Join(tmp, filepath.FromSlash(p))); err != nil {
			return "", fmt.Errorf("pybridge: extracting %s: %w", p, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(dir); statErr == nil {
			return dir, nil // another process won the race with the same content
		}
		return "", fmt.Errorf("pybridge: %w", err)
	}
	return dir, nil
}

func copyFile(fsys fs.FS, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := fsys.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
