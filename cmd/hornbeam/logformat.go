package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"github.com/hornbeam-go/hornbeam/bus"
)

// logFormat is --log-format (a flag of every command): text (logfmt) or json.
var logFormat = envStr("HORNBEAM_LOG_FORMAT", "text")

// logHandler makes the process's slog handler in --log-format. Keys given
// twice (a node's name by the command and again by the cluster layer) are
// written once, so every JSON line is an object with unique keys.
func logHandler(w io.Writer, opts *slog.HandlerOptions) (slog.Handler, error) {
	switch logFormat {
	case "", "text":
		return &uniqueKeys{h: slog.NewTextHandler(w, opts)}, nil
	case "json":
		return &uniqueKeys{h: slog.NewJSONHandler(w, opts)}, nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", logFormat)
	}
}

// uniqueKeys drops an attribute whose key a With already gave (top level
// only: groups are kept whole).
type uniqueKeys struct {
	h    slog.Handler
	keys []string
}

func (u *uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool { return u.h.Enabled(ctx, l) }

func (u *uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	if len(u.keys) == 0 {
		return u.h.Handle(ctx, r)
	}
	dup := false
	r.Attrs(func(a slog.Attr) bool {
		dup = dup || slices.Contains(u.keys, a.Key)
		return !dup
	})
	if !dup {
		return u.h.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !slices.Contains(u.keys, a.Key) {
			nr.AddAttrs(a)
		}
		return true
	})
	return u.h.Handle(ctx, nr)
}

func (u *uniqueKeys) WithAttrs(attrs []slog.Attr) slog.Handler {
	var keep []slog.Attr
	keys := slices.Clone(u.keys)
	for _, a := range attrs {
		if slices.Contains(keys, a.Key) {
			continue
		}
		keys = append(keys, a.Key)
		keep = append(keep, a)
	}
	return &uniqueKeys{h: u.h.WithAttrs(keep), keys: keys}
}

// WithGroup starts a group: keys inside it are another namespace.
func (u *uniqueKeys) WithGroup(name string) slog.Handler {
	return &uniqueKeys{h: u.h.WithGroup(name)}
}

// nodeLogger names the node on every line of log.
func nodeLogger(log *slog.Logger, nf *nodeFlags) *slog.Logger {
	return log.With("node", nf.nodeName())
}

// nodeName is the node's name as the flags give it, "nonode@nohost" without
// one (a bad name is reported later, where the node starts).
func (f *nodeFlags) nodeName() string {
	var name string
	var err error
	switch {
	case f.name != "":
		name, err = bus.LongName(f.name)
	case f.sname != "":
		name, err = bus.ShortName(f.sname)
	}
	if name == "" || err != nil {
		return "nonode@nohost"
	}
	return name
}

// writePIDFile writes this process's id to path (--pid), as gunicorn does;
// the returned function removes it.
func writePIDFile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	if err := os.WriteFile(path, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		return nil, fmt.Errorf("--pid: %w", err)
	}
	return func() { os.Remove(path) }, nil
}
