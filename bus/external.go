package bus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// CookieNKey returns the public NATS user nkey that nodes with this cookie
// sign in with on an external NATS server (--nats) when given no other
// credentials: add it to the server's authorization users. The server checks
// a signature of its own random nonce, so nothing replayable crosses the wire.
func CookieNKey(cookie string) (string, error) {
	kp, err := cookieKeyPair(cookie)
	if err != nil {
		return "", err
	}
	return kp.PublicKey()
}

func cookieKeyPair(cookie string) (nkeys.KeyPair, error) {
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, deriveKey(cookie, "nats user nkey"))
	if err != nil {
		return nil, fmt.Errorf("bus: cookie nkey: %w", err)
	}
	return kp, nil
}

// connectExternal connects to an external NATS deployment. TLS is required
// unless every server URL is on loopback; the server is verified with
// TLS.CA (or the system's roots). Credentials: a credentials file, else
// those in the URL, else the cookie's nkey; a server that takes no nkeys is
// then joined without credentials, with a warning.
func (b *Bus) connectExternal(opts []nats.Option) error {
	urls := strings.Split(b.cfg.NATSURL, ",")
	local, userInURL := true, false
	for _, raw := range urls {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			return fmt.Errorf("bus: --nats %q: want nats://HOST:PORT or tls://HOST:PORT", raw)
		}
		local = local && isLoopback(u.Hostname())
		userInURL = userInURL || u.User != nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if b.cfg.TLS.CA != "" {
		pool, err := loadPool(b.cfg.TLS.CA)
		if err != nil {
			return err
		}
		tc.RootCAs = pool
	}
	if b.cfg.TLS.Cert != "" || b.cfg.TLS.Key != "" {
		cert, err := tls.LoadX509KeyPair(b.cfg.TLS.Cert, b.cfg.TLS.Key)
		if err != nil {
			return fmt.Errorf("bus: client certificate for --nats: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if local {
		// Loopback traffic never leaves the machine: TLS when the server offers it.
		opts = append(opts, func(o *nats.Options) error { o.TLSConfig = tc; return nil })
	} else {
		opts = append(opts, nats.Secure(tc))
	}
	var cookieKey []nats.Option
	switch {
	case b.cfg.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(b.cfg.NATSCreds))
	case b.cfg.NATSToken != "":
		opts = append(opts, nats.Token(b.cfg.NATSToken))
	case !userInURL:
		kp, err := cookieKeyPair(b.cfg.Cookie)
		if err != nil {
			return err
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return fmt.Errorf("bus: cookie nkey: %w", err)
		}
		cookieKey = append(cookieKey, nats.Nkey(pub, kp.Sign))
	}
	nc, err := nats.Connect(b.cfg.NATSURL, append(opts, cookieKey...)...)
	if errors.Is(err, nats.ErrNkeysNotSupported) {
		b.log.Warn("the NATS server asks no credentials: whoever reaches it can join this cluster", "nats", b.cfg.NATSURL)
		cookieKey = nil
		nc, err = nats.Connect(b.cfg.NATSURL, opts...)
	}
	if err != nil {
		return fmt.Errorf("bus: connecting to %s: %w", b.cfg.NATSURL, err)
	}
	// Membership gets a connection of its own, made the same way.
	b.dial = func() (*nats.Conn, error) { return nats.Connect(b.cfg.NATSURL, append(opts, cookieKey...)...) }
	b.nc = nc
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// insecureAllowed refuses routes without TLS unless the listener and every
// seed are on loopback.
func insecureAllowed(listen string, seeds []string) error {
	if !isLoopback(listen) {
		return fmt.Errorf("bus: routes without TLS need a loopback cluster listener, not %s (give --cluster-host 127.0.0.1)", listen)
	}
	for _, s := range seeds {
		h, _, err := net.SplitHostPort(s)
		if err != nil || !isLoopback(h) {
			return fmt.Errorf("bus: routes without TLS are for loopback only, not %s", s)
		}
	}
	return nil
}
