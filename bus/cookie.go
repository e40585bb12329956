package bus

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoadCookie returns the cluster cookie as Erlang finds it: the explicit value,
// else $HORNBEAM_COOKIE, else ~/.hornbeam.cookie, which is created with a random
// cookie and mode 0400 when it does not exist.
func LoadCookie(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if c := os.Getenv("HORNBEAM_COOKIE"); c != "" {
		return c, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("bus: no cookie given and no home directory: %w", err)
	}
	path := filepath.Join(home, ".hornbeam.cookie")
	b, err := os.ReadFile(path)
	if err == nil {
		c := strings.TrimSpace(string(b))
		if c == "" {
			return "", fmt.Errorf("bus: cookie file %s is empty", path)
		}
		return c, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("bus: reading cookie: %w", err)
	}
	c := randomCookie()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if errors.Is(err, os.ErrExist) { // another node created it first
		return LoadCookie("")
	}
	if err != nil {
		return "", fmt.Errorf("bus: creating cookie file: %w", err)
	}
	if _, err := f.WriteString(c); err != nil {
		f.Close()
		return "", fmt.Errorf("bus: writing cookie file: %w", err)
	}
	return c, f.Close()
}

// randomCookie makes 20 upper-case letters, as Erlang's auto-generated cookie.
func randomCookie() string {
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = 'A' + b[i]%26
	}
	return string(b)
}

// derive turns the cookie into a purpose-bound value (today the subject
// namespace), from which the cookie cannot be recovered; keys come from
// deriveKey (HKDF) instead.
func derive(cookie, purpose string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("hornbeam/" + purpose))
	return hex.EncodeToString(m.Sum(nil))
}
