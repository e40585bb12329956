package main

import (
	"slices"
	"testing"
)

func TestEndRunFlags(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"run", "-m", "pytest", "-q", "x"}, []string{"run", "-m", "pytest", "--", "-q", "x"}},
		{[]string{"run", "--pythonpath", "lib", "-m", "pytest", "-q"}, []string{"run", "--pythonpath", "lib", "-m", "pytest", "--", "-q"}},
		{[]string{"run", "--threads=4", "-mpytest", "-v"}, []string{"run", "--threads=4", "-mpytest", "--", "-v"}},
		{[]string{"run", "--module=pytest", "-v"}, []string{"run", "--module=pytest", "--", "-v"}},
		{[]string{"run", "-c", "print(1)", "-x"}, []string{"run", "-c", "print(1)", "--", "-x"}},
		{[]string{"run", "script.py", "-m", "x"}, []string{"run", "script.py", "-m", "x"}},
		{[]string{"run", "--nope", "-m", "x"}, []string{"run", "--nope", "-m", "x"}},
		{[]string{"run", "-m"}, []string{"run", "-m"}},
		{[]string{"version"}, []string{"version"}},
	}
	for _, tt := range tests {
		if got := endRunFlags(newRootCmd(), tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("endRunFlags(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
