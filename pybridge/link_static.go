//go:build pystatic

package pybridge

// CPython linked into the binary, as Debian links its own python3. The shared
// libpython is built position-independent and reaches its own functions
// through the PLT: the same Python code ran about 10% slower in a node than
// under python3, and so under uvicorn or gunicorn. The Makefile passes the
// archive and the include path (CGO_CFLAGS, CGO_LDFLAGS) where Debian's
// libpythonX.Y-dev has it. --export-dynamic exports the C API from the binary
// for extension modules (numpy, uvloop), which are not linked against
// libpython and take its symbols from the program that loads them.

/*
#cgo LDFLAGS: -Wl,--export-dynamic
*/
import "C"
