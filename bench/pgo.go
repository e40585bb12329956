package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// pgoProfile writes the CPU profile that `go build` uses to optimise the node
// (profile-guided optimisation: cmd/hornbeam/default.pgo). It serves each app
// of the per-core table in turn, pinned as there, with HORNBEAM_CPUPROFILE
// set, loads it with wrk, and merges the profiles the nodes write as they
// stop. The FastAPI route, the goal furthest from met, gets the most time.
func pgoProfile(bin, out string) error {
	for _, tool := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (make bench-deps)", tool)
		}
	}
	pydir, _ := filepath.Abs("bench/py")
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "hornbeam-pgo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	loads := []struct {
		app, worker, path string
		seconds           int
	}{
		{"httpapps:fastapi_items", "asgi", "/items/5?q=x", 20},
		{"httpapps:asgi_hello", "asgi", "/", 10},
		{"httpapps:wsgi_hello", "wsgi", "/", 10},
		{"httpapps:asgi_64k", "asgi", "/", 5},
		{"httpapps:wsgi_64k", "wsgi", "/", 5},
		{"httpapps:flask_items", "wsgi", "/items/5", 5},
	}
	var profiles []string
	for i, l := range loads {
		port, err := freePort()
		if err != nil {
			return err
		}
		prof := filepath.Join(tmp, strconv.Itoa(i)+".pprof")
		cmd := exec.Command("taskset", "-c", serverCPU, bin, "start", l.app, "-k", l.worker,
			"-b", "127.0.0.1:"+strconv.Itoa(port), "--pythonpath", pydir, "--log-level", "warning")
		cmd.Dir = pydir
		cmd.Env = append(os.Environ(), "HORNBEAM_COOKIE=bench", "HORNBEAM_CPUPROFILE="+prof)
		if err := loadOnce(cmd, port, l.path, l.seconds); err != nil {
			return fmt.Errorf("%s: %w", l.app, err)
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

// loadOnce starts cmd, loads path on port with one wrk thread on loadCPU for
// seconds, and stops cmd gently, so that the node writes its profile.
func loadOnce(cmd *exec.Cmd, port int, path string, seconds int) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer stopGroup(cmd, 20*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	if err := waitHTTP(url, 20*time.Second); err != nil {
		return err
	}
	wrk := exec.Command("taskset", "-c", loadCPU, "wrk", "-t1", "-c64", "-d"+strconv.Itoa(seconds)+"s", url)
	if b, err := wrk.CombinedOutput(); err != nil {
		return fmt.Errorf("wrk: %v: %s", err, b)
	}
	return nil
}
