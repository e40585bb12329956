// Package mapper maps the node names of one host to their cluster ports, as
// Erlang's EPMD does: the first hornbeam node on a host answers on the
// mapper port (default 4368), the others register with it, and when it stops
// one of them takes the port over and the rest register again. Other hosts
// ask it for a name's port (`--join NAME@HOST`, connect('NAME@HOST')) or for
// the list (`hornbeam names HOST`).
//
// The protocol is one line per request, so `nc HOST 4368` works too:
//
//	NAMES            -> "name NAME at port PORT" lines, then the connection closes
//	PORT NAME        -> "PORT 9100" or "NONE"
//	REGISTER NAME P  -> "OK" (or "ERR reason"); the name stays registered
//	                    while the connection stays open (loopback peers only)
//
// It reveals node names and cluster ports, nothing else: what a port scan of
// the host would find, with names.
package mapper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultPort is the mapper's port: beside EPMD's 4369, so both run on one host.
const DefaultPort = 4368

// Bounds on what a peer can make the mapper hold.
const (
	maxLine     = 512             // bytes of one request line
	maxNames    = 1024            // registered names
	maxConns    = 256             // connections at once
	readTimeout = 5 * time.Second // a query's request line
	dialTimeout = 2 * time.Second // reaching a mapper
	ioTimeout   = 5 * time.Second // a query's whole exchange
	retryMax    = 2 * time.Second // between attempts to hold or join the mapper
	retryMin    = 50 * time.Millisecond
)

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,255}$`)

// ErrNotFound reports a name no node on that host has registered.
var ErrNotFound = errors.New("mapper: no such name on that host")

// table is the holder's map of names to ports.
type table struct {
	mu    sync.Mutex
	ports map[string]int
}

func (t *table) add(name string, port int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.ports[name]; ok {
		return fmt.Errorf("the name %s is registered already", name)
	}
	if len(t.ports) >= maxNames {
		return fmt.Errorf("%d names registered: no room", maxNames)
	}
	t.ports[name] = port
	return nil
}

func (t *table) remove(name string) {
	t.mu.Lock()
	delete(t.ports, name)
	t.mu.Unlock()
}

// Node keeps one node's name registered on its host's mapper, holding the
// mapper port itself when no other node does.
type Node struct {
	name    string // the NAME of NAME@HOST
	port    int    // the node's cluster port
	mport   int
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}
	holding chan struct{} // closed the first time this node holds or joins the mapper
}

// Register keeps name (NAME@HOST or NAME) registered with clusterPort on
// this host's mapper at mapperPort until Close. It returns at once; the
// registration is made (and remade after a mapper change) in the background.
func Register(name string, clusterPort, mapperPort int, log *slog.Logger) *Node {
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{name: name, port: clusterPort, mport: mapperPort, log: log, cancel: cancel,
		done: make(chan struct{}), holding: make(chan struct{})}
	go n.run(ctx)
	return n
}

// Ready is closed once the name is registered (by this node holding the
// mapper, or with the node that does).
func (n *Node) Ready() <-chan struct{} { return n.holding }

// Close unregisters the name; if this node held the mapper port, another
// node takes it over.
func (n *Node) Close() {
	n.cancel()
	<-n.done
}

func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	var once sync.Once
	ready := func() { once.Do(func() { close(n.holding) }) }
	wait := retryMin
	warned := false
	for ctx.Err() == nil {
		err := n.hold(ctx, ready)
		if err == nil {
			err = n.join(ctx, ready)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && !warned {
			n.log.Warn("the port mapper is unreachable; this node cannot be found by name", "mapper_port", n.mport, "err", err)
			warned = true
		} else if err == nil {
			warned = false
			wait = retryMin
		}
		// Jitter, so the nodes of a host do not all race for the port at once.
		d := wait/2 + rand.N(wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		wait = min(2*wait, retryMax)
	}
}

// hold serves the mapper port until ctx ends; it returns nil at once when
// another process holds the port.
func (n *Node) hold(ctx context.Context, ready func()) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(n.mport))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil
		}
		return err
	}
	t := &table{ports: map[string]int{}}
	t.add(n.name, n.port)
	n.log.Debug("holding the port mapper", "mapper_port", n.mport)
	ready()
	go func() { <-ctx.Done(); ln.Close() }()
	serve(ln, t, n.log)
	return nil
}

// join registers with the holder and keeps the connection open until it
// closes (the holder stopped) or ctx ends.
func (n *Node) join(ctx context.Context, ready func()) error {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.mport)))
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	c.SetDeadline(time.Now().Add(ioTimeout))
	fmt.Fprintf(c, "REGISTER %s %d\n", n.name, n.port)
	r := bufio.NewReaderSize(c, maxLine)
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("registering with the port mapper: %w", err)
	}
	if line = strings.TrimSpace(line); line != "OK" {
		return fmt.Errorf("the port mapper refused %s: %s", n.name, line)
	}
	c.SetDeadline(time.Time{})
	ready()
	io.Copy(io.Discard, r) // until the holder goes
	return nil
}

// serve answers the mapper protocol on ln until it is closed, then closes
// every connection, so the registered nodes see the holder go.
func serve(ln net.Listener, t *table, log *slog.Logger) {
	sem := make(chan struct{}, maxConns)
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // too many at once
			continue
		}
		mu.Lock()
		if conns == nil {
			mu.Unlock()
			c.Close()
			return
		}
		conns[c] = true
		mu.Unlock()
		go func() {
			defer func() { <-sem }()
			defer func() {
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
			handle(c, t, log)
		}()
	}
}

func handle(c net.Conn, t *table, log *slog.Logger) {
	c.SetDeadline(time.Now().Add(readTimeout))
	r := bufio.NewReaderSize(c, maxLine)
	line, err := r.ReadSlice('\n')
	if err != nil {
		return // too long, too slow or gone
	}
	f := strings.Fields(string(line))
	switch {
	case len(f) == 1 && f[0] == "NAMES":
		c.SetDeadline(time.Now().Add(ioTimeout))
		w := bufio.NewWriter(c)
		for _, e := range t.list() {
			fmt.Fprintf(w, "name %s at port %d\n", e.Name, e.Port)
		}
		w.Flush()
	case len(f) == 2 && f[0] == "PORT":
		c.SetDeadline(time.Now().Add(ioTimeout))
		t.mu.Lock()
		p, ok := t.ports[f[1]]
		t.mu.Unlock()
		if ok {
			fmt.Fprintf(c, "PORT %d\n", p)
		} else {
			io.WriteString(c, "NONE\n")
		}
	case len(f) == 3 && f[0] == "REGISTER":
		register(c, r, t, f[1], f[2], log)
	default:
		io.WriteString(c, "ERR unknown request\n")
	}
}

// register keeps name registered while c stays open. Only this host's
// processes may register.
func register(c net.Conn, r *bufio.Reader, t *table, name, port string, log *slog.Logger) {
	ra, _ := c.RemoteAddr().(*net.TCPAddr)
	if ra == nil || !ra.IP.IsLoopback() {
		io.WriteString(c, "ERR registration only from this host\n")
		return
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || !nameRe.MatchString(name) {
		io.WriteString(c, "ERR bad name or port\n")
		return
	}
	if err := t.add(name, p); err != nil {
		fmt.Fprintf(c, "ERR %s\n", err)
		return
	}
	defer t.remove(name)
	log.Debug("port mapper: registered", "peer_name", name, "port", p)
	c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "OK\n"); err != nil {
		return
	}
	for {
		if _, err := r.ReadByte(); err != nil {
			return // the node closed or died: its name goes
		}
	}
}

// Entry is one registered name.
type Entry struct {
	Name string
	Port int
}

func (t *table) list() []Entry {
	t.mu.Lock()
	out := make([]Entry, 0, len(t.ports))
	for n, p := range t.ports {
		out = append(out, Entry{n, p})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// query sends one request to host's mapper and returns the answer's lines.
func query(ctx context.Context, host string, port int, req string) ([]string, error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("mapper: no port mapper on %s:%d: %w", host, port, err)
	}
	defer c.Close()
	deadline := time.Now().Add(ioTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, req+"\n"); err != nil {
		return nil, fmt.Errorf("mapper: %s:%d: %w", host, port, err)
	}
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(c, maxNames*(maxLine+32)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mapper: %s:%d: %w", host, port, err)
	}
	return lines, nil
}

// Names lists the names registered on host's mapper.
func Names(ctx context.Context, host string, port int) ([]Entry, error) {
	lines, err := query(ctx, host, port, "NAMES")
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, l := range lines {
		var e Entry
		if _, err := fmt.Sscanf(l, "name %s at port %d", &e.Name, &e.Port); err == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// Resolve turns NAME@HOST into HOST:PORT of that node's cluster listener,
// asking HOST's mapper at port.
func Resolve(ctx context.Context, node string, port int) (string, error) {
	name, host, ok := strings.Cut(node, "@")
	if !ok || name == "" || host == "" {
		return "", fmt.Errorf("mapper: %q is not NAME@HOST", node)
	}
	lines, err := query(ctx, host, port, "PORT "+name)
	if err != nil {
		return "", err
	}
	if len(lines) == 1 && strings.HasPrefix(lines[0], "PORT ") {
		if p, err := strconv.Atoi(lines[0][5:]); err == nil {
			return net.JoinHostPort(host, strconv.Itoa(p)), nil
		}
	}
	if len(lines) == 1 && lines[0] == "NONE" {
		return "", fmt.Errorf("%w: %s", ErrNotFound, node)
	}
	return "", fmt.Errorf("mapper: %s:%d answered %q", host, port, lines)
}
