package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"
	"time"
)

// Two nodes with one cookie trust each other's certificates; another cookie's
// are refused; a leaf is renewed once due, and still verifies.
func TestIdentityFromCookie(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	a, err := newIdentity("a@h", "k1", TLSFiles{}, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newIdentity("b@h", "k1", TLSFiles{}, clock)
	x, _ := newIdentity("x@h", "k2", TLSFiles{}, clock)
	state := func(id *identity) tls.ConnectionState {
		c, err := id.current()
		if err != nil {
			t.Fatal(err)
		}
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}}
	}
	if err := a.verify(state(b)); err != nil {
		t.Errorf("same cookie refused: %v", err)
	}
	if err := a.verify(state(x)); err == nil {
		t.Error("another cookie's certificate accepted")
	}
	if err := a.verify(tls.ConnectionState{}); err == nil {
		t.Error("no certificate accepted")
	}
	first, _ := b.current()
	now = now.Add(leafRenew + time.Minute)
	second, _ := b.current()
	if first == second || !second.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Error("the leaf was not renewed when due")
	}
	if err := a.verify(state(b)); err != nil {
		t.Errorf("renewed leaf refused: %v", err)
	}
	now = now.Add(leafLifetime)
	if err := a.verify(tls.ConnectionState{PeerCertificates: []*x509.Certificate{first.Leaf}}); err == nil {
		t.Error("an expired leaf accepted")
	}
}

// Adding a route at run time (hornbeam_dist.connect("HOST:PORT")) reloads
// the server's options, TLS included: the new route must come up over TLS,
// and one to a cluster with another cookie must not.
func TestConnectAddsTLSRoute(t *testing.T) {
	a := startBus(t, "a@127.0.0.1", "c-connect")
	c := startBus(t, "c@127.0.0.1", "c-connect")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := c.Connect(ctx, a.ClusterAddr())
	if err != nil || !ok {
		t.Fatalf("Connect: %v %v", ok, err)
	}
	waitNodes(t, c, "a@127.0.0.1")
	if _, err := c.Call(ctx, "a@127.0.0.1", "m", "echo", []byte{0x81, 0x01}); err != nil {
		t.Fatal(err)
	}
	x := startBus(t, "x@127.0.0.1", "another")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if ok, _ := x.Connect(ctx2, a.ClusterAddr()); ok {
		t.Fatal("a node with another cookie connected")
	}
	if fmt.Sprint(x.Nodes(Connected)) != "[]" {
		t.Fatalf("x sees %v", x.Nodes(Connected))
	}
}
