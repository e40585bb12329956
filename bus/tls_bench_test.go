package bus

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkRouteCall measures a call over a route between two buses, with
// route TLS (the default) and without it (InsecureRoutes), so the cost of
// TLS can be read off: go test -bench RouteCall -run '^$' ./bus
func BenchmarkRouteCall(b *testing.B) {
	for _, tc := range []struct {
		name     string
		insecure bool
	}{{"tls", false}, {"plain", true}} {
		b.Run(tc.name, func(b *testing.B) {
			start := func(name string, join ...string) *Bus {
				n, err := Start(Config{Name: name, Cookie: "bench", ClusterHost: "127.0.0.1", Join: join,
					Handler: echoHandler{}, InsecureRoutes: tc.insecure,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { n.Close() })
				return n
			}
			srv := start("srv@127.0.0.1")
			cli := start("cli@127.0.0.1", srv.ClusterAddr())
			args := []byte{0x81, 0x45, 'h', 'e', 'l', 'l', 'o'}
			call := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := cli.Call(ctx, "srv@127.0.0.1", "m", "echo", args); err != nil {
					b.Fatal(err)
				}
			}
			call()
			b.Run("seq", func(b *testing.B) {
				for b.Loop() {
					call()
				}
			})
			b.Run("par32", func(b *testing.B) {
				b.SetParallelism(32)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						call()
					}
				})
			})
		})
	}
}
