package main

import (
	"os"
	"strconv"
	"time"
)

// envInt reads an integer default from the environment, ignoring bad values.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func msDuration(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// spinWait turns --spin-us into pybridge's SpinWait: 0 (the default) and
// negative never spin.
func spinWait(us int) time.Duration {
	if us < 0 {
		return -1
	}
	return time.Duration(us) * time.Microsecond
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

// envBool reads a boolean default from the environment, ignoring bad values.
func envBool(name string, def bool) bool {
	if v, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
