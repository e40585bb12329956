package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// addOperatorCommands adds what operators expect of a server's command line:
// --version/-V, --log-format, and the cluster views (status).
func addOperatorCommands(root *cobra.Command) {
	root.Version = version
	root.SetVersionTemplate(fmt.Sprintf("hornbeam {{.Version}} (Python %s)\n", pythonVersion()))
	root.Flags().BoolP("version", "V", false, "print the hornbeam version and the Python it embeds")
	root.PersistentFlags().StringVar(&logFormat, "log-format", logFormat, "log lines as text (logfmt) or json (env HORNBEAM_LOG_FORMAT)")
	root.AddCommand(newStatusCmd(), newNamesCmd())
}
