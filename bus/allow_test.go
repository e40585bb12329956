package bus

import (
	"errors"
	"strings"
	"testing"
)

func TestModuleAllowed(t *testing.T) {
	tests := []struct {
		patterns []string
		module   string
		ok       bool
	}{
		{nil, "os", true}, // no rules: everything, as Erlang
		{[]string{"ml"}, "ml", true},
		{[]string{"ml"}, "ml.encoders", true},
		{[]string{"ml"}, "mlx", false},
		{[]string{"ml.*"}, "ml.encoders", true},
		{[]string{"ml.*"}, "ml", false},
		{[]string{"app_*"}, "app_web", true},
		{[]string{"app_*"}, "os", false},
		{[]string{"*"}, "anything.at.all", true},
		{[]string{"*"}, "os", false}, // a glob never reaches a dangerous module
		{[]string{"o*"}, "os", false},
		{[]string{"*"}, "subprocess", false},
		{[]string{"*"}, "builtins", false},
		{[]string{"*"}, "os.path", false},
		{[]string{"os"}, "os", true}, // naming it exactly does
		{[]string{"os"}, "os.path", false},
		{[]string{"ml", "cltest"}, "cltest", true},
	}
	for _, tt := range tests {
		err := ModuleAllowed(tt.patterns, tt.module)
		if (err == nil) != tt.ok {
			t.Errorf("ModuleAllowed(%q, %q) = %v, want ok=%v", tt.patterns, tt.module, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrBadRPC) || !strings.Contains(err.Error(), "--allow-module")) {
			t.Errorf("ModuleAllowed(%q, %q) = %v: not a BadRPC naming the rule", tt.patterns, tt.module, err)
		}
	}
	if err := checkPatterns([]string{"ml", "["}); err == nil {
		t.Error("a malformed pattern was accepted")
	}
}
