package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam/bus"
)

// nodeFlags are the cluster flags shared by start, run and the cluster tools.
type nodeFlags struct {
	name, sname, cookie  string
	clusterHost, natsURL string
	clusterPort          int
	join, roles          []string
	capabilities         []string
	hidden               bool
	maxPayload           int
	heartbeatMillis      int
	tls                  bus.TLSFiles
	natsCreds            string
	allowModules         []string
	joinTimeout          float64
	mapperPort           int
	portRange            string
}

func (f *nodeFlags) add(fs *pflag.FlagSet, tool bool) {
	fs.StringVar(&f.cookie, "cookie", "", "cluster cookie (env HORNBEAM_COOKIE, else ~/.hornbeam.cookie, created on first use)")
	fs.StringArrayVar(&f.join, "join", envList("HORNBEAM_JOIN"), "HOST:PORT of a node's cluster listener to join (repeatable; env HORNBEAM_JOIN, comma-separated)")
	fs.StringVar(&f.natsURL, "nats", os.Getenv("HORNBEAM_NATS"), "use this NATS deployment instead of the embedded server (env HORNBEAM_NATS)")
	fs.IntVar(&f.maxPayload, "max-payload", envInt("HORNBEAM_MAX_PAYLOAD", bus.DefaultMaxPayload), "largest rpc request or reply in bytes")
	fs.StringVar(&f.tls.Cert, "cluster-cert", os.Getenv("HORNBEAM_CLUSTER_CERT"), "this node's TLS certificate (PEM), from your own PKI instead of the cookie's CA (env HORNBEAM_CLUSTER_CERT)")
	fs.StringVar(&f.tls.Key, "cluster-key", os.Getenv("HORNBEAM_CLUSTER_KEY"), "the key of --cluster-cert (PEM) (env HORNBEAM_CLUSTER_KEY)")
	fs.StringVar(&f.tls.CA, "cluster-ca", os.Getenv("HORNBEAM_CLUSTER_CA"), "CA bundle (PEM) that signs every node's --cluster-cert; with --nats, verifies the NATS server (env HORNBEAM_CLUSTER_CA)")
	fs.StringVar(&f.natsCreds, "nats-creds", os.Getenv("HORNBEAM_NATS_CREDS"), "NATS credentials file for --nats (default: the nkey derived from the cookie, see `hornbeam nkey`) (env HORNBEAM_NATS_CREDS)")
	addJoinTimeout(fs, &f.joinTimeout, tool)
	addMapperFlags(fs, f, tool)
	if tool {
		return
	}
	fs.StringVar(&f.name, "name", os.Getenv("HORNBEAM_NAME"), "long node name NAME@HOST, e.g. web@10.0.0.1 (env HORNBEAM_NAME)")
	fs.StringVar(&f.sname, "sname", "", "short node name NAME; HOST is this host's name")
	fs.StringVar(&f.clusterHost, "cluster-host", "", "cluster listener host (default: the name's host when it is an IP, else all interfaces)")
	fs.IntVar(&f.clusterPort, "cluster-port", envInt("HORNBEAM_CLUSTER_PORT", 0), "cluster listener port (0 picks a free one and logs it)")
	fs.BoolVar(&f.hidden, "hidden", false, "a hidden node: not listed by other nodes' nodes()")
	fs.StringArrayVar(&f.roles, "role", nil, "a role this node announces, e.g. gpu (repeatable)")
	fs.StringArrayVar(&f.capabilities, "capability", nil, "a capability this node announces for DAG placement, KEY=VALUE, e.g. gpu=1 or cpu=4 (repeatable; overrides the detected cpu, memory in MB, gpu)")
	fs.IntVar(&f.heartbeatMillis, "heartbeat-ms", 0, "membership heartbeat interval (default 150; a node silent for 3 is probed)")
	fs.StringArrayVar(&f.allowModules, "allow-module", envList("HORNBEAM_ALLOW_MODULE"), "a module other nodes may call, as a glob on dotted names, e.g. ml or 'app_*' (repeatable; default: every module; env HORNBEAM_ALLOW_MODULE, comma-separated)")
}

// config returns the bus config, or nil when no name was given.
func (f *nodeFlags) config() (*bus.Config, error) {
	var name string
	var err error
	switch {
	case f.name != "" && f.sname != "":
		return nil, errors.New("--name and --sname cannot be used together")
	case f.name != "":
		name, err = bus.LongName(f.name)
	case f.sname != "":
		name, err = bus.ShortName(f.sname)
	default:
		if len(f.join) > 0 || f.natsURL != "" {
			return nil, errors.New("--join and --nats need a node name: give --name NAME@HOST or --sname NAME")
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return f.busConfig(name)
}

func (f *nodeFlags) busConfig(name string) (*bus.Config, error) {
	cookie, err := bus.LoadCookie(f.cookie)
	if err != nil {
		return nil, err
	}
	c := &bus.Config{
		Name: name, Cookie: cookie, ClusterHost: f.clusterHost, ClusterPort: f.clusterPort,
		Join: f.join, Hidden: f.hidden, NATSURL: f.natsURL, Roles: f.roles, MaxPayload: f.maxPayload,
		TLS: f.tls, NATSCreds: f.natsCreds, AllowModules: f.allowModules,
		// Benchmarks only: measures what route TLS costs; refused off loopback.
		InsecureRoutes: os.Getenv("HORNBEAM_INSECURE_ROUTES") == "1",
		// Tests only: a node whose wall clock is off by this much.
		ClockSkew: msDuration(envInt("HORNBEAM_TEST_CLOCK_SKEW_MS", 0)),
	}
	if f.heartbeatMillis > 0 {
		c.Heartbeat = msDuration(f.heartbeatMillis)
	}
	if c.Capabilities, err = parseCapabilities(f.capabilities); err != nil {
		return nil, err
	}
	c.JoinTimeout = secDuration(f.joinTimeout)
	c.Resolve = f.resolver()
	if c.ClusterPort, err = f.pickClusterPort(f.clusterHost); err != nil {
		return nil, err
	}
	return c, nil
}

// parseCapabilities reads repeated --capability KEY=VALUE flags.
func parseCapabilities(kvs []string) (map[string]float64, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]float64, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--capability %q: want KEY=VALUE, e.g. gpu=1", kv)
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			return nil, fmt.Errorf("--capability %q: the value must be a number >= 0", kv)
		}
		out[k] = n
	}
	return out, nil
}

// toolConfig makes a hidden node for a CLI tool, named cli-RANDOM@127.0.0.1,
// listening on loopback only.
func (f *nodeFlags) toolConfig() (*bus.Config, error) {
	if len(f.join) == 0 && f.natsURL == "" {
		return nil, errors.New("which cluster? give --join HOST:PORT of a node's cluster listener")
	}
	var r [4]byte
	rand.Read(r[:])
	c, err := f.busConfig(fmt.Sprintf("cli-%s@127.0.0.1", hex.EncodeToString(r[:])))
	if err != nil {
		return nil, err
	}
	c.Hidden = true
	c.ClusterHost = "127.0.0.1"
	return c, nil
}

func envList(name string) []string {
	v := os.Getenv(name)
	if v == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
