package main

import (
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// applyConfigFile sets the flags a TOML file names (keys as the long flag names,
// '-' or '_' alike), except those given on the command line, which win:
// command line > config file > HORNBEAM_* environment > defaults.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	var m map[string]any
	if _, err := toml.DecodeFile(path, &m); err != nil {
		return fmt.Errorf("-c %s: %w", path, err)
	}
	for key, v := range m {
		name := strings.ReplaceAll(key, "_", "-")
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("-c %s: unknown setting %q", path, key)
		}
		if f.Changed {
			continue
		}
		vals := []any{v}
		if list, ok := v.([]any); ok {
			vals = list
		}
		for _, x := range vals {
			if err := fs.Set(name, fmt.Sprint(x)); err != nil {
				return fmt.Errorf("-c %s: %s = %v: %w", path, key, x, err)
			}
		}
	}
	return nil
}
