//go:build pystatic

package pybridge

// CPython linked into the binary, as Debian links its own python3. Debian's
// shared libpython is a build of its own whose code runs slower: linked
// against it, a node ran a plain Python loop in 1.3 to 1.45 times the CPU
// time of python3 (the archive: 1.04 to 1.14), and so slower than uvicorn or
// gunicorn would run the same app (docs/ARCHITECTURE.md). The Makefile passes the
// archive and the include path (CGO_CFLAGS, CGO_LDFLAGS) where Debian's
// libpythonX.Y-dev has it. --export-dynamic exports the C API from the binary
// for extension modules (numpy, uvloop), which are not linked against
// libpython and take its symbols from the program that loads them.

/*
#cgo LDFLAGS: -Wl,--export-dynamic
*/
import "C"
