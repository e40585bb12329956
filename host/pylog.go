package host

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/pybridge"
)

// logFuncs are the Go functions Python's logging reaches the node's log through.
func (n *Node) logFuncs() map[string]pybridge.GoFunc {
	return map[string]pybridge.GoFunc{"log": n.pyLog}
}

// pyLevel maps a Python logging level to slog's: DEBUG 10, INFO 20,
// WARNING 30, ERROR 40 (CRITICAL 50 is an error too).
func pyLevel(levelno int) slog.Level {
	switch {
	case levelno < 20:
		return slog.LevelDebug
	case levelno < 30:
		return slog.LevelInfo
	case levelno < 40:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// maxLogField bounds a message or traceback written to the log.
const maxLogField = 64 << 10

func clip(s string) string {
	if len(s) > maxLogField {
		return s[:maxLogField] + "…(truncated)"
	}
	return s
}

func (n *Node) pyLog(ctx context.Context, data []byte) ([]byte, error) {
	var a struct {
		_         struct{} `cbor:",toarray"`
		Level     int
		Logger    string
		Message   string
		Traceback *string
	}
	if err := decodeArgs("log", data, &a); err != nil {
		return nil, err
	}
	attrs := []any{"logger", a.Logger, "pid", os.Getpid()}
	if a.Traceback != nil {
		attrs = append(attrs, "traceback", clip(*a.Traceback))
	}
	n.log.Log(ctx, pyLevel(a.Level), clip(a.Message), attrs...)
	return []byte{0xf6}, nil // None
}

// installPythonLogging routes Python's root logger into the node's log at
// the node's level.
func (n *Node) installPythonLogging() {
	level := 40
	for _, l := range []struct {
		s  slog.Level
		py int
	}{{slog.LevelDebug, 10}, {slog.LevelInfo, 20}, {slog.LevelWarn, 30}} {
		if n.log.Enabled(context.Background(), l.s) {
			level = l.py
			break
		}
	}
	args, _ := cbor.Marshal([]any{level})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.py.Call(ctx, "hornbeam_erlang._logging", "install", args); err != nil {
		n.log.Warn("Python's logging stays unrouted", "err", err)
	}
}
