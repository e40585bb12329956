package main

import (
	"os"
	"strconv"
)

// envInt reads an integer default from the environment, ignoring bad values.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
