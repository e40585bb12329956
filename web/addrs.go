package web

import (
	"net"
	"net/http"
	"strconv"
)

// connAddrs are a connection's two addresses split as the environ and the
// scope give them. The plain server splits them once per connection; a
// request through net/http, or whose client a trusted proxy names, has them
// split for it.
type connAddrs struct {
	remote             string // the RemoteAddr these were split from
	client, clientPort string
	clientPortN        uint64
	clientOK           bool
	server, serverPort string
	serverPortN        uint64
	serverOK           bool
}

type connAddrsKey struct{}

func splitAddrs(remote string, local net.Addr) *connAddrs {
	a := &connAddrs{remote: remote}
	if h, p, err := net.SplitHostPort(remote); err == nil {
		a.client, a.clientPort, a.clientOK = h, p, true
		a.clientPortN, _ = strconv.ParseUint(p, 10, 16)
	}
	if local != nil {
		if h, p, err := net.SplitHostPort(local.String()); err == nil {
			a.server, a.serverPort, a.serverOK = h, p, true
			a.serverPortN, _ = strconv.ParseUint(p, 10, 16)
		}
	}
	return a
}

// addrsOf returns r's addresses.
func addrsOf(r *http.Request) *connAddrs {
	if a, ok := r.Context().Value(connAddrsKey{}).(*connAddrs); ok && a.remote == r.RemoteAddr {
		return a
	}
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return splitAddrs(r.RemoteAddr, la)
}
