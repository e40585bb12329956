package tests

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunExitStatus(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, src string
		code      int
		stdout    string
		stderrHas string
	}{
		{"ok", "print('hi')", 0, "hi\n", ""},
		{"sys.exit(3)", "import sys; sys.exit(3)", 3, "", ""},
		{"sys.exit(None)", "raise SystemExit", 0, "", ""},
		{"sys.exit(str)", "import sys; sys.exit('bye now')", 1, "", "bye now"},
		{"exception", "def f():\n    raise ValueError('bad thing')\nf()", 1, "", "ValueError: bad thing"},
		{"traceback names the line", "x = 1\n1/0\n", 1, "", "line 2"},
		{"hornbeam modules importable", "import hornbeam_erlang, hornbeam_ml, hornbeam_dist, _hornbeam\nprint(hornbeam_erlang.node())", 0, "nonode@nohost\n", ""},
		{"__name__ is __main__", "print(__name__)", 0, "__main__\n", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := writeFile(t, dir, filepath.Join("s", string(rune('a'+i))+".py"), tt.src)
			r := run(t, dir, nil, 60*time.Second, "run", script)
			if r.code != tt.code || (tt.stdout != "" && r.stdout != tt.stdout) || !strings.Contains(r.stderr, tt.stderrHas) {
				t.Fatalf("got code %d stdout %q stderr %q; want code %d stdout %q stderr containing %q",
					r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderrHas)
			}
		})
	}
}

func TestRunArgvModuleCode(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pkg_hb/__init__.py", "")
	writeFile(t, dir, "pkg_hb/tool.py", "import sys\nprint(__name__, sys.argv[1:])\n")
	script := writeFile(t, dir, "argv.py", "import sys\nprint(sys.argv)\n")

	r := run(t, dir, nil, 60*time.Second, "run", script, "-x", "--flag", "y")
	if r.code != 0 || r.stdout != "['"+script+"', '-x', '--flag', 'y']\n" {
		t.Fatalf("script argv: %+v", r)
	}
	r = run(t, dir, nil, 60*time.Second, "run", "-m", "pkg_hb.tool", "a", "-b")
	if r.code != 0 || r.stdout != "__main__ ['a', '-b']\n" {
		t.Fatalf("-m: %+v", r)
	}
	r = run(t, dir, nil, 60*time.Second, "run", "-c", "import sys; print(sys.argv)", "z")
	if r.code != 0 || r.stdout != "['-c', 'z']\n" {
		t.Fatalf("-c: %+v", r)
	}
	r = run(t, dir, nil, 60*time.Second, "run", "-m", "no_such_module_hb")
	if r.code != 1 || !strings.Contains(r.stderr, "No module named no_such_module_hb") {
		t.Fatalf("missing -m module: %+v", r)
	}
	r = run(t, dir, nil, 60*time.Second, "run", filepath.Join(dir, "missing.py"))
	if r.code != 2 || !strings.Contains(r.stderr, "missing.py") {
		t.Fatalf("missing script: %+v", r)
	}
	r = run(t, dir, nil, 60*time.Second, "run")
	if r.code != 2 || !strings.Contains(r.stderr, "nothing to run") {
		t.Fatalf("no target: %+v", r)
	}
}

func TestRunPythonPath(t *testing.T) {
	dir := t.TempDir()
	lib1 := filepath.Join(dir, "lib1")
	lib2 := filepath.Join(dir, "lib2")
	writeFile(t, lib1, "mod_one_hb.py", "V = 1\n")
	writeFile(t, lib2, "mod_two_hb.py", "V = 2\n")
	r := run(t, dir, nil, 60*time.Second, "run", "--pythonpath", lib1, "--pythonpath", "lib2", "-c",
		"import mod_one_hb, mod_two_hb; print(mod_one_hb.V + mod_two_hb.V)")
	if r.code != 0 || r.stdout != "3\n" {
		t.Fatalf("%+v", r)
	}
}

func TestRunExecutableAndMultiprocessing(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "mp.py", `
import multiprocessing, subprocess, sys

def square(x):
    return x * x

if __name__ == "__main__":
    out = subprocess.run([sys.executable, "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(tuple(sys.version_info[:2])), (out, sys.version_info)
    with multiprocessing.Pool(2) as pool:
        print(pool.map(square, range(5)))
`)
	r := run(t, dir, nil, 120*time.Second, "run", script)
	if r.code != 0 || r.stdout != "[0, 1, 4, 9, 16]\n" {
		t.Fatalf("%+v", r)
	}
}

func TestRunVirtualenv(t *testing.T) {
	dir := t.TempDir()
	venv := filepath.Join(dir, "venv")
	var version string
	r := run(t, dir, nil, 60*time.Second, "run", "-c", "import sys; print(sys._base_executable)")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	base := strings.TrimSpace(r.stdout)
	out, err := exec.Command(base, "-m", "venv", "--without-pip", venv).CombinedOutput()
	if err != nil {
		t.Skipf("cannot make a venv with %s: %v\n%s", base, err, out)
	}
	out, _ = exec.Command(filepath.Join(venv, "bin", "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").Output()
	site := strings.TrimSpace(string(out))
	writeFile(t, site, "venv_only_hb.py", "WHERE = 'venv'\n")
	_ = version
	r = run(t, dir, []string{"VIRTUAL_ENV=" + venv}, 60*time.Second, "run", "-c",
		"import sys, venv_only_hb; print(venv_only_hb.WHERE, sys.prefix == sys.argv[1], sys.executable)", venv)
	want := "venv True " + filepath.Join(venv, "bin", "python") + "\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("got %+v, want stdout %q", r, want)
	}
}

func TestRunSignals(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "loop.py", `
import time
try:
    print("ready", flush=True)  # inside the try: a signal may come at once
    while True:
        time.sleep(0.02)
finally:
    print("cleanup ran", flush=True)
`)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd, sc := startScript(t, ctx, script, "ready")
			cmd.Process.Signal(tc.sig)
			var lines []string
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code || strings.Join(lines, "|") != "cleanup ran" {
				t.Fatalf("exit %d (want %d), output %q", code, tc.code, lines)
			}
		})
	}
}

// startScript runs `hornbeam run script` in its own process group (killed
// when ctx ends) and waits for its first line to be first.
func startScript(t *testing.T, ctx context.Context, script, first string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.CommandContext(ctx, hornbeam, "run", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != first {
		t.Fatalf("no %s line: %q", first, sc.Text())
	}
	return cmd, sc
}

func TestVersionAndHelp(t *testing.T) {
	r := run(t, t.TempDir(), nil, 30*time.Second, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "hornbeam ") || !strings.Contains(r.stdout, "Python 3.") {
		t.Fatalf("version: %+v", r)
	}
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"version", "--help"}} {
		r := run(t, t.TempDir(), nil, 30*time.Second, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Fatalf("%v: %+v", args, r)
		}
	}
}
