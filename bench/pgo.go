package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// pgoProfile writes the CPU profile that `go build` uses to optimise the node
// (profile-guided optimisation: cmd/hornbeam/default.pgo). It measures each
// app of the per-core table in turn as that table does (measureInterleaved,
// pinned), with HORNBEAM_CPUPROFILE set, and merges the profiles the nodes
// write as they stop.
func pgoProfile(bin, out string) error {
	env, err := newPinnedEnv(bin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "hornbeam-pgo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	loads := []struct{ app, worker, path string }{
		{"httpapps:fastapi_items", "asgi", "/items/5?q=x"},
		{"httpapps:asgi_hello", "asgi", "/"},
		{"httpapps:wsgi_hello", "wsgi", "/"},
		{"httpapps:asgi_64k", "asgi", "/"},
		{"httpapps:wsgi_64k", "wsgi", "/"},
		{"httpapps:flask_items", "wsgi", "/items/5"},
	}
	var profiles []string
	for i, l := range loads {
		prof := filepath.Join(tmp, strconv.Itoa(i)+".pprof")
		node := func(port int) *exec.Cmd {
			cmd := env.hb(l.app, "-k", l.worker)(port)
			cmd.Env = append(os.Environ(), "HORNBEAM_CPUPROFILE="+prof)
			return cmd
		}
		// The node is stopped, and writes its profile, before this returns.
		if _, errs := measureInterleaved([]target{{node, l.path}}, true, 64); errs[0] != nil {
			return fmt.Errorf("%s: %w", l.app, errs[0])
		}
		if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
			return fmt.Errorf("%s: the node wrote no profile", l.app)
		}
		profiles = append(profiles, prof)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	merge := exec.Command("go", append([]string{"tool", "pprof", "-proto"}, profiles...)...)
	merge.Stdout = f
	merge.Stderr = os.Stderr
	err = merge.Run()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("merging the profiles: %w", err)
	}
	return nil
}
