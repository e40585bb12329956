package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hornbeam-go/hornbeam/bus"
	"github.com/hornbeam-go/hornbeam/metrics"
)

//go:embed static
var static embed.FS

// Config configures a metrics bind.
type Config struct {
	Addr    string       // HOST:PORT
	Metrics *metrics.Set // what /metrics serves
	// Bus returns the node's bus (nil outside a cluster, or before it joined).
	Bus func() *bus.Bus
	// Name is the node's name, for a node outside a cluster.
	Name   string
	Logger *slog.Logger
}

// Server is a running metrics bind.
type Server struct {
	cfg  Config
	ln   net.Listener
	srv  *http.Server
	mu   sync.Mutex // one view built at a time; the others wait for it
	last []byte
	at   time.Time
}

// cacheFor is how long one view of the cluster answers /api/cluster: a page
// left open in many browsers costs the cluster one round of node_info per
// second, not one per browser.
const cacheFor = time.Second

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-bind %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, ln: ln}
	page, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", cfg.Metrics.Handler())
	mux.HandleFunc("GET /api/cluster", s.apiCluster)
	mux.Handle("GET /", http.FileServerFS(page))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("metrics bind stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

func (s *Server) apiCluster(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.last == nil || time.Since(s.at) > cacheFor {
		var view Cluster
		if b := s.bus(); b != nil {
			view = Collect(context.WithoutCancel(r.Context()), b, "")
		} else {
			view = s.alone()
		}
		s.last, _ = json.Marshal(view)
		s.at = time.Now()
	}
	data := s.last
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

func (s *Server) bus() *bus.Bus {
	if s.cfg.Bus == nil {
		return nil
	}
	return s.cfg.Bus()
}

// alone is the view of a node outside a cluster: itself.
func (s *Server) alone() Cluster {
	now := time.Now().UTC()
	info := map[string]any{"name": s.cfg.Name}
	if t := s.cfg.Metrics.Totals(); t != nil {
		info["metrics"] = t
	}
	return Cluster{Node: s.cfg.Name, Time: now, Nodes: []Node{{Name: s.cfg.Name, Up: true, Roles: []string{}, LastHeartbeat: &now, Info: info}}}
}
