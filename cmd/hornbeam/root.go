package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a process exit status out of a command.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func asExit(err error, target *exitError) bool { return errors.As(err, target) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "hornbeam",
		Short:         "Run Python apps on an Erlang-style cluster of Go nodes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newStartCmd(), newRunCmd(), newNodesCmd(), newPingCmd(), newCallCmd(), newVersionCmd(), newNKeyCmd())
	addOperatorCommands(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the hornbeam version and the Python it embeds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "hornbeam %s (Python %s)\n", version, pythonVersion())
			return nil
		},
	}
}

// newLogger makes the process logger; HORNBEAM_LOG_LEVEL sets the level.
func newLogger(level string) (*slog.Logger, error) {
	if level == "" {
		level = os.Getenv("HORNBEAM_LOG_LEVEL")
	}
	var l slog.Level
	switch strings.ToLower(level) {
	case "", "info":
		l = slog.LevelInfo
	case "debug":
		l = slog.LevelDebug
	case "warning", "warn":
		l = slog.LevelWarn
	case "error", "critical":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("unknown log level %q (debug, info, warning, error)", level)
	}
	h, err := logHandler(os.Stderr, &slog.HandlerOptions{Level: l})
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}
