// Package bus connects hornbeam nodes into an Erlang-style cluster: each node
// runs an embedded NATS server whose routes form the mesh over mutual TLS with
// certificates derived from a shared cookie; nodes have NAME@HOST names, see each other come and go through
// heartbeats, and call each other's Python functions with CBOR over NATS.
package bus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hornbeam-go/hornbeam/internal/bytebudget"
	"github.com/hornbeam-go/hornbeam/metrics"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxPayload  = 8 << 20
	DefaultMaxInflight = 16384
	DefaultHeartbeat   = 150 * time.Millisecond
	// DefaultMaxInflightBytes bounds the request bytes of the calls and casts
	// a node holds (queued or running) when Config.MaxInflightBytes is 0 (or
	// 4 payloads, if that is more).
	DefaultMaxInflightBytes = 256 << 20
	DefaultCastTimeout      = 60 * time.Second
)

// Handler runs the calls that other nodes send to this one.
type Handler interface {
	// Call runs module.function(*args) (args: a CBOR array) and returns the CBOR
	// result. Errors it returns become RemoteError on the caller, or BadRPC when
	// they wrap ErrBadRPC.
	Call(ctx context.Context, module, function string, args []byte) ([]byte, error)
}

// Mode is a Bus's part in its node.
type Mode int

const (
	// Standalone: the node's one process runs the server, membership and the
	// Python that serves calls.
	Standalone Mode = iota
	// Supervisor: the process runs the server and membership for worker
	// processes that serve the calls. It announces the node (heartbeats) only
	// once Announce is called, when a worker is ready.
	Supervisor
	// Worker: a worker process of a Supervisor's node, attached to its server
	// (NATSURL, NATSToken; mutual TLS with the node's identity, from the same
	// Cookie or TLS files) under the node's name. With an empty NATSToken,
	// NATSURL is the node's external NATS instead. Workers share the node's calls
	// (a NATS queue group) and see membership, but do not announce.
	Worker
)

// Config configures a node's place in the cluster.
type Config struct {
	Mode        Mode
	Name        string   // NAME@HOST (see LongName, ShortName)
	Cookie      string   // shared secret; see LoadCookie
	ClusterHost string   // route listener host; "" = the name's host if it is an IP, else 0.0.0.0
	ClusterPort int      // route listener port; 0 picks a free one
	Join        []string // seed HOST:PORT route addresses
	Hidden      bool     // not listed by other nodes' Nodes(Visible)
	NATSURL     string   // use this NATS deployment instead of an embedded server
	NATSToken   string   // the token for NATSURL, if it needs one; see Worker
	// NATSCreds is a NATS credentials file for NATSURL; without it (and
	// without credentials in the URL) the node signs in with the NATS user
	// nkey derived from the cookie (see CookieNKey).
	NATSCreds string
	// TLS is a user-provided PKI for the cluster; empty: derived from Cookie.
	// With NATSURL, TLS.CA verifies the external server (default: the
	// system's roots) and TLS.Cert/Key are shown to it when given.
	TLS TLSFiles
	// InsecureRoutes turns TLS off on routes, for measuring what TLS costs.
	// It is refused unless every route stays on loopback.
	InsecureRoutes bool
	// ClockSkew shifts this node's wall clock, to test that nothing on the
	// wire depends on the machines' clocks agreeing. Tests only.
	ClockSkew time.Duration
	// AllowModules, when not empty, are the module-name patterns (see
	// ModuleAllowed) that other nodes may call; every other module is refused.
	AllowModules []string
	Roles        []string // announced with the heartbeat
	// Capabilities are announced with the heartbeat too (gpu: the number of
	// GPUs, cpu, memory_gb, ...), for selecting nodes by what they have.
	Capabilities map[string]float64
	MaxPayload   int // largest message in bytes; 0 = DefaultMaxPayload
	MaxInflight  int // calls and casts held at once; beyond, callers get ErrBusy
	// MaxInflightBytes bounds the request bytes of the calls and casts held
	// at once; beyond, callers get ErrBusy. 0 = DefaultMaxInflightBytes.
	MaxInflightBytes int64
	// CastTimeout is the deadline of a cast this node runs: past it the
	// Python code is interrupted as a call's is. 0 = DefaultCastTimeout.
	CastTimeout time.Duration
	Heartbeat   time.Duration
	// JoinTimeout bounds how long Start waits for the first route when Join is
	// set; 0 = 5 s.
	JoinTimeout time.Duration
	Handler     Handler
	// Info answers node_info requests; nil answers with the name and roles only.
	Info   func(ctx context.Context) any
	Logger *slog.Logger
	// Metrics counts calls, casts and nodedowns; nil counts nothing.
	Metrics *metrics.Set
	// Resolve finds NAME@HOST's route listener (HOST:PORT) for a node not
	// yet in the cluster, so that Connect and Ping reach it (the port
	// mapper); nil reaches only nodes already known.
	Resolve func(ctx context.Context, node string) (string, error)
}

// Bus is a node's connection to the cluster.
type Bus struct {
	cfg         Config
	log         *slog.Logger
	name        string
	incarnation uint64
	ns          string // subject namespace derived from the cookie
	id          *identity
	token       string // the embedded server's client token, random per process
	srv         *server.Server
	optsMu      sync.Mutex
	sopts       *server.Options // the embedded server's options, for reloads
	nc          *nats.Conn
	// mc carries membership (heartbeats, pings, node info) on a connection
	// of its own, so that payloads queued on nc never delay a heartbeat.
	mc         *nats.Conn
	dial       func() (*nats.Conn, error) // another connection like nc
	inbox      string
	maxPayload int
	sem        chan struct{}
	held       atomic.Int64 // request bytes of the calls and casts in sem
	maxHeld    int64
	sent       *bytebudget.Budget // large casts sent and not yet acknowledged (window.go)
	casts      castCounts
	announced  atomic.Bool // heartbeats go out

	nextID  atomic.Uint64
	pmu     sync.Mutex
	pending map[uint64]*pendingCall
	byNode  map[string]map[uint64]*pendingCall

	members *members

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	subs    []*nats.Subscription
	authMu  sync.Mutex
	authErr string // the last route authorization failure, for error messages
}

// Start joins the cluster. With Join set it waits (JoinTimeout) for a route to a
// seed, then refuses to start if another live node already has this name.
func Start(cfg Config) (*Bus, error) {
	if _, err := LongName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Cookie == "" {
		return nil, errors.New("bus: empty cookie")
	}
	if cfg.Mode == Worker && cfg.NATSURL == "" {
		return nil, errors.New("bus: a worker needs its node's NATS URL")
	}
	if err := checkPatterns(cfg.AllowModules); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = 5 * time.Second
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = max(DefaultMaxInflightBytes, 4*int64(cfg.MaxPayload))
	}
	if cfg.CastTimeout <= 0 {
		cfg.CastTimeout = DefaultCastTimeout
	}
	var inc [8]byte
	rand.Read(inc[:])
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bus{
		cfg:         cfg,
		log:         cfg.Logger.With("node", cfg.Name),
		name:        cfg.Name,
		incarnation: binary.LittleEndian.Uint64(inc[:]),
		ns:          "hb." + derive(cfg.Cookie, "namespace")[:12],
		maxPayload:  cfg.MaxPayload,
		sem:         make(chan struct{}, cfg.MaxInflight),
		maxHeld:     cfg.MaxInflightBytes,
		sent:        bytebudget.New(2 * int64(cfg.MaxPayload)),
		pending:     map[uint64]*pendingCall{},
		byNode:      map[string]map[uint64]*pendingCall{},
		ctx:         ctx,
		cancel:      cancel,
	}
	b.members = newMembers(b)
	if cfg.ClockSkew != 0 {
		b.log.Warn("this node's clock is shifted for a test", "skew", cfg.ClockSkew)
	}
	var tok [32]byte
	rand.Read(tok[:])
	b.token = hex.EncodeToString(tok[:])
	if cfg.NATSURL == "" || (cfg.Mode == Worker && cfg.NATSToken != "") {
		id, err := newIdentity(cfg.Name, cfg.Cookie, cfg.TLS, b.wallClock)
		if err != nil {
			cancel()
			return nil, err
		}
		b.id = id
	}
	if err := b.resolveJoins(); err != nil {
		b.shutdown()
		return nil, err
	}
	if err := b.connect(); err != nil {
		b.shutdown()
		return nil, err
	}
	mc, err := b.dial()
	if err != nil {
		b.shutdown()
		return nil, fmt.Errorf("bus: the membership connection: %w", err)
	}
	b.mc = mc
	if err := b.join(); err != nil {
		b.shutdown()
		return nil, err
	}
	return b, nil
}

func (b *Bus) connect() error {
	opts := []nats.Option{
		nats.Name(b.name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.NoEcho(),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			b.log.Warn("nats", "err", err)
		}),
	}
	if b.cfg.NATSURL != "" && b.cfg.Mode == Worker && b.cfg.NATSToken != "" {
		// The supervising process's server: mutual TLS with the node's identity.
		opts = append(opts, nats.Token(b.cfg.NATSToken), nats.Secure(b.id.config()))
		b.dial = func() (*nats.Conn, error) { return nats.Connect(b.cfg.NATSURL, opts...) }
		nc, err := b.dial()
		if err != nil {
			return fmt.Errorf("bus: connecting to the node's server %s: %w", b.cfg.NATSURL, err)
		}
		b.nc = nc
		return nil
	}
	if b.cfg.NATSURL != "" {
		return b.connectExternal(opts)
	}
	host := b.cfg.ClusterHost
	if host == "" {
		host = "0.0.0.0"
		if h := Host(b.name); IsIP(h) {
			host = h
		}
	}
	var routes []*url.URL
	for _, j := range b.cfg.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("bus: --join %q: want HOST:PORT of a node's cluster listener", j)
		}
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: j})
	}
	port := b.cfg.ClusterPort
	if port == 0 {
		port = -1
	}
	sopts := &server.Options{
		ServerName:    b.name + "#" + strconv.FormatUint(b.incarnation, 36), // unique, so our own name check decides
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		Authorization: b.token,
		TLSConfig:     b.id.config(),
		TLSVerify:     true,
		TLSTimeout:    tlsTimeout.Seconds(),
		NoSigs:        true,
		MaxPayload:    int32(b.cfg.MaxPayload),
		MaxPending:    int64(b.cfg.MaxPayload) * 8,
		Cluster: server.ClusterOpts{
			Name:         "hornbeam",
			Host:         host,
			Port:         port,
			TLSConfig:    b.id.config(),
			TLSTimeout:   tlsTimeout.Seconds(),
			PingInterval: 2 * time.Second,
			MaxPingsOut:  2,
		},
		Routes: routes,
	}
	if b.cfg.InsecureRoutes {
		if err := insecureAllowed(host, b.cfg.Join); err != nil {
			return err
		}
		sopts.Cluster.TLSConfig, sopts.Cluster.TLSTimeout = nil, 0
		b.log.Warn("cluster routes without TLS (HORNBEAM_INSECURE_ROUTES): for benchmarks on loopback only")
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return fmt.Errorf("bus: embedded NATS: %w", err)
	}
	fatal := make(chan string, 1)
	srv.SetLoggerV2(&natsLogger{b: b, fatal: fatal}, false, false, false)
	go srv.Start()
	// Poll rather than wait the whole bound: a fatal error (the cluster port
	// in use) ends the start at once, with its reason.
	for deadline := time.Now().Add(10 * time.Second); !srv.ReadyForConnections(50 * time.Millisecond); {
		select {
		case why := <-fatal:
			srv.Shutdown()
			return fmt.Errorf("bus: embedded NATS did not start: %s", why)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return fmt.Errorf("bus: embedded NATS did not start (cluster listener %s:%d)", host, b.cfg.ClusterPort)
		}
	}
	b.srv = srv
	b.sopts = sopts.Clone()
	b.dial = func() (*nats.Conn, error) {
		return nats.Connect("", append(opts, nats.InProcessServer(srv), nats.Token(b.token))...)
	}
	nc, err := b.dial()
	if err != nil {
		return fmt.Errorf("bus: connecting to the embedded NATS: %w", err)
	}
	b.nc = nc
	return nil
}

// tlsTimeout bounds a TLS handshake on the cluster and client listeners.
const tlsTimeout = 5 * time.Second

// join subscribes, waits for the seeds, checks the name is free and starts heartbeats.
func (b *Bus) join() error {
	b.inbox = b.ns + ".in." + escape(b.name) + "." + strconv.FormatUint(b.incarnation, 36)
	sub, err := b.nc.Subscribe(b.inbox+".*", b.onReply)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	b.subs = append(b.subs, sub)
	if err := b.members.start(); err != nil {
		return err
	}
	if len(b.cfg.Join) > 0 || b.cfg.NATSURL != "" {
		if err := b.waitForPeers(); err != nil {
			return err
		}
	}
	if b.cfg.Mode == Worker {
		// The node's supervisor checked the name and answers pings; workers
		// share its calls.
		return b.subscribe(b.rpcSubject(b.name), "workers", b.onRequest)
	}
	if b.probe(b.name, 300*time.Millisecond) {
		return fmt.Errorf("bus: node name %s is already in use in this cluster", b.name)
	}
	if err := b.subscribeOn(b.mc, b.sysSubject(b.name), "", b.onSys); err != nil {
		return err
	}
	if b.cfg.Mode == Standalone {
		if err := b.subscribe(b.rpcSubject(b.name), "", b.onRequest); err != nil {
			return err
		}
		b.Announce()
	}
	client := "" // never an external URL: it may hold a password
	if b.srv != nil {
		client = b.srv.ClientURL()
	}
	b.log.Info("joined cluster", "cluster", b.ClusterAddr(), "client", client, "hidden", b.cfg.Hidden)
	return nil
}

// subscribe subscribes handler to subject (in queue group queue, if not
// empty), lets it hold up to 64 maximal payloads pending, and waits until the
// server has the interest.
func (b *Bus) subscribe(subject, queue string, handler nats.MsgHandler) error {
	return b.subscribeOn(b.nc, subject, queue, handler)
}

func (b *Bus) subscribeOn(nc *nats.Conn, subject, queue string, handler nats.MsgHandler) error {
	sub, err := nc.QueueSubscribe(subject, queue, handler)
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	sub.SetPendingLimits(-1, b.cfg.MaxPayload*64)
	b.subs = append(b.subs, sub)
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// Announce starts the heartbeats that make this node known: at Start for a
// Standalone bus, when its first worker is ready for a Supervisor.
func (b *Bus) Announce() {
	if b.cfg.Mode != Worker && !b.announced.Swap(true) {
		b.members.beat()
	}
}

// waitForPeers waits for a route to a seed (embedded server) and the first
// heartbeat from another node, so that the name check and the first nodes()
// see the cluster.
func (b *Bus) waitForPeers() error {
	deadline := time.Now().Add(b.cfg.JoinTimeout)
	if b.srv == nil {
		// On an external NATS there is no seed to wait for, and this node may
		// be the first: peers, if any, beat within one interval.
		deadline = time.Now().Add(3 * b.cfg.Heartbeat)
	}
	if b.srv != nil {
		for b.srv.NumRoutes() == 0 {
			b.authMu.Lock()
			why := b.authErr
			b.authMu.Unlock()
			if why != "" { // a seed refused us: waiting will not change its mind
				return fmt.Errorf("bus: could not join %s: %s (is the cookie the same on every node?)",
					strings.Join(b.cfg.Join, ", "), why)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bus: could not join %s within %v: no route to any seed",
					strings.Join(b.cfg.Join, ", "), b.cfg.JoinTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Interest in subjects propagates over the new route; one heartbeat from a
	// peer means ours reach them and theirs reach us. A heartbeat under our own
	// name ends the wait too: the name check below then refuses it.
	for !b.members.anyPeer() && !b.members.nameClash() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if b.srv != nil {
		b.waitForMesh(deadline)
	}
	return nil
}

// waitForMesh waits (until deadline at most: a peer this host cannot reach
// must not stop it from starting) until this node hears every node that
// the peers it hears know of, so that the nodes gossip found are reachable
// once Start returns. NATS does not relay between routes: until the mesh is
// complete, a node known to the seed only is out of reach, and a CLI tool's
// first call to it would fail. Hearing a node's heartbeat means the route to
// it is up and its subscriptions, sent first on that route, are known here.
func (b *Bus) waitForMesh(deadline time.Time) {
	want := map[string]bool{}
	asked := time.Time{}
	for time.Now().Before(deadline) {
		have := b.Nodes(Connected)
		if time.Since(asked) > 100*time.Millisecond {
			asked = time.Now()
			for _, n := range have {
				msg, err := b.nc.Request(b.sysSubject(n), []byte(sysPeers), 250*time.Millisecond)
				if err != nil {
					continue
				}
				for _, m := range strings.Split(string(msg.Data), "\n") {
					if m != "" && m != b.name {
						want[m] = true
					}
				}
			}
		}
		missing := len(want)
		for _, n := range have {
			if want[n] {
				missing--
			}
		}
		if missing == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wallClock is this node's idea of the time of day: the machine's clock,
// shifted by Config.ClockSkew in tests. Only certificates depend on it;
// nothing sent between nodes does.
func (b *Bus) wallClock() time.Time { return time.Now().Add(b.cfg.ClockSkew) }

// Name returns this node's name.
func (b *Bus) Name() string { return b.name }

// ClusterAddr returns the HOST:PORT where other nodes reach this one's route
// listener: the listen address, or the name's host when listening on all
// interfaces ("" with an external NATS).
func (b *Bus) ClusterAddr() string {
	if b.srv == nil {
		return ""
	}
	a := b.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = Host(b.name)
	}
	return net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// ClientURL returns the embedded server's loopback client URL and token, for
// worker processes of this node (the external URL and "" with an external
// NATS). The token is random per process; workers also need the node's TLS
// identity (the same cookie or certificate files) to connect.
func (b *Bus) ClientURL() (string, string) {
	if b.srv == nil {
		return b.cfg.NATSURL, ""
	}
	return b.srv.ClientURL(), b.token
}

// Close leaves the cluster: peers are told at once, calls waiting on this node
// get ErrClosed, and the embedded server stops.
func (b *Bus) Close() error {
	b.members.leave()
	b.shutdown()
	return nil
}

func (b *Bus) shutdown() {
	b.cancel()
	for _, s := range b.subs {
		s.Unsubscribe()
	}
	b.wg.Wait()
	b.failAll(ErrClosed)
	if b.nc != nil {
		b.nc.Close()
	}
	if b.mc != nil {
		b.mc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

func (b *Bus) rpcSubject(node string) string { return b.ns + ".rpc." + escape(node) }
func (b *Bus) sysSubject(node string) string { return b.ns + ".sys." + escape(node) }
func (b *Bus) hbSubject() string             { return b.ns + ".hb" }

// natsLogger forwards the embedded server's log to slog and remembers route
// authorization and TLS handshake failures, so a wrong cookie is named in
// Start's error.
type natsLogger struct {
	b     *Bus
	fatal chan<- string // gets the first fatal error, for Start
}

func (l *natsLogger) note(msg string) {
	if l.b.gossipedRouteError(msg) {
		l.b.log.Debug("nats", "detail", strings.TrimSpace(msg))
		return
	}
	lm := strings.ToLower(msg)
	if strings.Contains(lm, "will not be verified") {
		return // the default check is off because identity.verify checks the chain itself
	}
	tlsFail := strings.Contains(lm, "tls") && strings.Contains(lm, "handshake")
	if tlsFail || strings.Contains(lm, "authoriz") || strings.Contains(lm, "authentic") {
		if strings.Contains(lm, " route ") || strings.Contains(lm, "rid:") {
			l.b.authMu.Lock()
			l.b.authErr = "route handshake failed (" + strings.TrimSpace(msg) + ")"
			l.b.authMu.Unlock()
		}
		l.b.log.Error("cluster peer refused: wrong cookie or certificate, or not a hornbeam node", "nats", strings.TrimSpace(msg))
		return
	}
	l.b.log.Warn("nats", "detail", strings.TrimSpace(msg))
}

func (l *natsLogger) Noticef(format string, v ...any) {
	l.b.log.Debug("nats", "detail", fmt.Sprintf(format, v...))
}
func (l *natsLogger) Warnf(format string, v ...any)  { l.note(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any) { l.note(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.b.log.Error("nats fatal", "detail", msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
func (l *natsLogger) Debugf(format string, v ...any) {}
func (l *natsLogger) Tracef(format string, v ...any) {}
