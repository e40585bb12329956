package bus

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// ErrBadName reports a node name that is not NAME@HOST.
var ErrBadName = errors.New("bus: bad node name")

// LongName checks an Erlang long name, NAME@HOST.
func LongName(name string) (string, error) {
	alive, host, ok := strings.Cut(name, "@")
	if !ok || alive == "" || host == "" || strings.Contains(host, "@") {
		return "", fmt.Errorf("%w %q: want NAME@HOST, e.g. web@10.0.0.1", ErrBadName, name)
	}
	if err := checkPart(alive); err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadName, name, err)
	}
	return name, nil
}

// ShortName makes NAME@HOST from a short name and this host's name up to its
// first dot, as Erlang's -sname does.
func ShortName(alive string) (string, error) {
	if err := checkPart(alive); err != nil || strings.Contains(alive, "@") {
		return "", fmt.Errorf("%w %q: a short name has no @HOST part", ErrBadName, alive)
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("bus: hostname for short name: %w", err)
	}
	h, _, _ = strings.Cut(h, ".")
	return alive + "@" + h, nil
}

func checkPart(alive string) error {
	if alive == "" {
		return errors.New("empty name")
	}
	for _, r := range alive {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("character %q is not allowed (letters, digits, '_' and '-')", r)
		}
	}
	return nil
}

// Host returns the HOST of NAME@HOST.
func Host(name string) string {
	_, h, _ := strings.Cut(name, "@")
	return h
}

// IsIP reports whether host is an IP literal.
func IsIP(host string) bool { return net.ParseIP(host) != nil }

// escape makes a node name a single NATS subject token: hosts contain dots, and
// subjects use them as separators. Letters, digits, '-' and '_' stay; any other
// byte becomes '~' and two hex digits, so the mapping is one to one.
func escape(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "~%02x", c)
		}
	}
	return b.String()
}
