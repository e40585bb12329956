package web

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted is the set of peers whose X-Forwarded-For and X-Forwarded-Proto
// are believed (--forwarded-allow-ips, as uvicorn's): addresses and CIDR
// ranges, or every peer ("*").
type Trusted struct {
	all  bool
	nets []netip.Prefix
}

// ParseTrusted reads a comma-separated list of IPs, CIDR ranges or "*".
func ParseTrusted(list string) (*Trusted, error) {
	t := &Trusted{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case s == "*":
			t.all = true
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("--forwarded-allow-ips %q: %w", s, err)
			}
			t.nets = append(t.nets, p.Masked())
		default:
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("--forwarded-allow-ips %q: %w", s, err)
			}
			t.nets = append(t.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return t, nil
}

func (t *Trusted) has(host string) bool {
	if t.all {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type schemeKey struct{}

// proxied applies X-Forwarded-For and X-Forwarded-Proto when the peer is a
// trusted proxy: the client is the nearest address in X-Forwarded-For that
// is not itself a trusted proxy (as uvicorn finds it), and the scheme is
// the proxy's. From any other peer the headers reach the app untouched but
// change nothing.
func (s *Server) proxied(r *http.Request) *http.Request {
	t := s.cfg.ForwardedAllowIPs
	if t == nil {
		return r
	}
	// Direct reads: the keys of a parsed request are canonical, and this runs
	// for every request.
	xff, protos := r.Header["X-Forwarded-For"], r.Header["X-Forwarded-Proto"]
	if len(xff) == 0 && len(protos) == 0 {
		return r
	}
	proto := ""
	if len(protos) > 0 {
		proto = protos[0]
	}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || !t.has(peer) {
		return r
	}
	ctx := r.Context()
	if p := strings.ToLower(strings.TrimSpace(proto)); p == "http" || p == "https" || p == "ws" || p == "wss" {
		ctx = context.WithValue(ctx, schemeKey{}, p)
	}
	r2 := r.WithContext(ctx)
	if len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		client := ""
		for i := len(hops) - 1; i >= 0; i-- {
			h := strings.TrimSpace(hops[i])
			if h == "" {
				continue
			}
			client = h
			if !t.has(h) {
				break
			}
		}
		if a, err := netip.ParseAddr(client); err == nil {
			r2.RemoteAddr = net.JoinHostPort(a.String(), "0")
		}
	}
	return r2
}

// secure reports whether the client reached us over TLS: directly, or as a
// trusted proxy's X-Forwarded-Proto says.
func secure(r *http.Request) bool {
	if p, ok := r.Context().Value(schemeKey{}).(string); ok {
		return p == "https" || p == "wss"
	}
	return r.TLS != nil
}

// httpScheme is an HTTP request's scheme (wsgi.url_scheme, an ASGI http scope's).
func httpScheme(r *http.Request) string {
	if secure(r) {
		return "https"
	}
	return "http"
}
