//go:build !pystatic

package pybridge

// The shared libpython, found through pkg-config: what a plain `go build`
// links. `make build` links the static library instead (link_static.go).

/*
#cgo pkg-config: python3-embed
*/
import "C"
