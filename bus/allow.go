package bus

import (
	"fmt"
	"path"
	"strings"
)

// ModuleAllowed reports whether other nodes may call (or cast to, or spawn
// in) module under the --allow-module patterns: nil when patterns is empty
// (everything is allowed, as in Erlang) or one of them matches, else an
// ErrBadRPC naming the rules. A pattern is a path.Match glob over the dotted
// name ("ml", "ml.*", "app_*"); a pattern without wildcards also allows the
// module's submodules ("ml" allows "ml.encoders").
func ModuleAllowed(patterns []string, module string) error {
	if len(patterns) == 0 || internal[module] {
		return nil
	}
	top, _, _ := strings.Cut(module, ".")
	if dangerous[top] {
		// Only a rule naming it exactly reaches a module that runs commands,
		// touches files or loads code: a broad glob never does.
		for _, p := range patterns {
			if p == module {
				return nil
			}
		}
		return BadRPC(fmt.Sprintf("module %q is not allowed on this node (--allow-module %s; a module that runs commands, touches files or loads code needs a rule naming it exactly)", module, strings.Join(patterns, ", ")))
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, module); ok {
			return nil
		}
		if !strings.ContainsAny(p, `*?[\`) && strings.HasPrefix(module, p+".") {
			return nil
		}
	}
	return BadRPC(fmt.Sprintf("module %q is not allowed on this node (--allow-module %s)", module, strings.Join(patterns, ", ")))
}

// internal are hornbeam's own modules that other nodes call to run DAG
// functions and routed requests; each checks the user's module it is asked to
// run against the same patterns before importing it.
var internal = map[string]bool{
	"hornbeam_dag._executor": true, "hornbeam_dag._scheduler": true, "hornbeam_dist._router": true,
}

// dangerous are the standard modules (and their submodules) that give a
// caller the machine: processes, files, code loading, raw memory.
var dangerous = map[string]bool{
	"os": true, "posix": true, "nt": true, "subprocess": true, "_posixsubprocess": true,
	"builtins": true, "__builtin__": true, "__main__": true, "sys": true, "importlib": true,
	"runpy": true, "code": true, "codeop": true, "pty": true, "shutil": true, "pathlib": true,
	"io": true, "_io": true, "ctypes": true, "_ctypes": true, "pickle": true, "_pickle": true,
	"marshal": true, "shelve": true, "socket": true, "_socket": true, "multiprocessing": true,
	"signal": true, "tempfile": true, "glob": true, "webbrowser": true, "asyncio": true,
	"threading": true, "_thread": true, "gc": true, "inspect": true, "platform": true,
	"zipimport": true, "pydoc": true, "fcntl": true, "resource": true, "mmap": true,
}

// checkPatterns refuses malformed patterns at start rather than at each call.
func checkPatterns(patterns []string) error {
	for _, p := range patterns {
		if p == "" {
			return fmt.Errorf("bus: --allow-module: empty pattern")
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("bus: --allow-module %q: %w", p, err)
		}
	}
	return nil
}
