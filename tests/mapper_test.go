package tests

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitNames waits until `hornbeam names` lists exactly want (NAME -> cluster address).
func waitNames(t *testing.T, port int, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The mapper port is taken a moment after a node starts (and taken
		// over a moment after its holder stops): until then names fails.
		r := run(t, "", nil, 20*time.Second, "names", "127.0.0.1", "--mapper-port", strconv.Itoa(port))
		out := r.stdout
		if r.code != 0 {
			out = ""
		}
		got := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			var n string
			var p int
			if _, err := fmt.Sscanf(l, "name %s at port %d", &n, &p); err == nil {
				got[n] = "127.0.0.1:" + strconv.Itoa(p)
			}
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			if !strings.HasPrefix(out, fmt.Sprintf("hornbeam: port mapper up and running on port %d with data:\n", port)) {
				t.Errorf("names header: %q", out)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("names lists %v, want %v (last: exit %d %s)", got, want, r.code, r.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMapperJoinConnectPingByName(t *testing.T) {
	cookie := "mapper-obs13"
	mport := freeTCPPort(t)
	mp := strconv.Itoa(mport)
	t.Setenv("HORNBEAM_MAPPER_PORT", mp) // for the script, whose own flags end at its path
	a := startNode(t, "mapa-obs13@127.0.0.1", cookie, "--mapper-port", mp)
	b := startNode(t, "mapb-obs13@127.0.0.1", cookie, "--mapper-port", mp, "--join", "mapa-obs13@127.0.0.1")
	c := startNode(t, "mapc-obs13@127.0.0.1", cookie, "--mapper-port", mp) // in no cluster yet
	waitNames(t, mport, map[string]string{"mapa-obs13": a.addr, "mapb-obs13": b.addr, "mapc-obs13": c.addr})
	b.waitLog(t, "msg=nodeup", 1, 10*time.Second)

	// From a script joined by name: ping and connect a node of no cluster by NAME@HOST.
	var got struct {
		Ping    string
		Connect bool
		Nodes   []string
	}
	script(t, "maps-obs13@127.0.0.1", cookie, "mapa-obs13@127.0.0.1", waitPeers+`
import json
from hornbeam_dist import connect, nodes, ping
wait_peers(["mapa-obs13@127.0.0.1", "mapb-obs13@127.0.0.1"])
p = ping("mapc-obs13@127.0.0.1")
c = connect("mapc-obs13@127.0.0.1")
wait_peers(["mapc-obs13@127.0.0.1"])
print(json.dumps({"Ping": p, "Connect": c, "Nodes": sorted(nodes())}))
`, 60*time.Second, &got)
	if got.Ping != "pong" || !got.Connect {
		t.Errorf("ping/connect by name: %+v", got)
	}

	// The node holding the mapper port stops: another takes it over, and
	// names, --join and the tools keep working.
	a.stop()
	waitNames(t, mport, map[string]string{"mapb-obs13": b.addr, "mapc-obs13": c.addr})
	d := startNode(t, "mapd-obs13@127.0.0.1", cookie, "--mapper-port", mp, "--join", "mapb-obs13@127.0.0.1")
	d.waitLog(t, "msg=nodeup", 1, 10*time.Second)
	r := run(t, "", nil, 30*time.Second, "call", "mapd-obs13@127.0.0.1", "cltest", "whoami", "--join", "mapc-obs13@127.0.0.1",
		"--mapper-port", mp, "--cookie", cookie)
	if r.code != 0 || strings.TrimSpace(r.stdout) != `"mapd-obs13@127.0.0.1"` {
		t.Errorf("call through a --join by name: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, 30*time.Second, "ping", "mapb-obs13@127.0.0.1", "--join", "mapd-obs13@127.0.0.1", "--mapper-port", mp, "--cookie", cookie)
	if strings.TrimSpace(r.stdout) != "pong" {
		t.Errorf("ping after the takeover: %q %s", r.stdout, r.stderr)
	}
	// An unknown name is a clear error.
	r = run(t, "", nil, 30*time.Second, "nodes", "--join", "nobody-obs13@127.0.0.1", "--mapper-port", mp, "--cookie", cookie, "--join-timeout", "1")
	if r.code == 0 || !strings.Contains(r.stderr, "no such name") {
		t.Errorf("--join of an unknown name: exit %d %q", r.code, r.stderr)
	}
}

func TestClusterPortRange(t *testing.T) {
	// Six ports, the first held by someone else.
	var first int
	var held net.Listener
	for range 20 {
		p := freeTCPPort(t)
		ok := true
		for q := p + 1; q <= p+5; q++ {
			l, err := net.Listen("tcp", ":"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if l, err := net.Listen("tcp", ":"+strconv.Itoa(p)); ok && err == nil {
			first, held = p, l
			break
		}
	}
	if held == nil {
		t.Skip("no six free ports in a row")
	}
	defer held.Close()
	rng := fmt.Sprintf("%d-%d", first, first+5)
	cookie := "range-obs13"
	a := startNode(t, "ra-obs13@127.0.0.1", cookie, "--cluster-port-range", rng)
	b := startNode(t, "rb-obs13@127.0.0.1", cookie, "--cluster-port-range", rng, "--join", a.addr)
	pa, pb := portOf(a.addr), portOf(b.addr)
	if pa <= first || pa > first+5 || pb <= first || pb > first+5 || pa == pb {
		t.Errorf("cluster ports %d and %d, want two of %d-%d but not the taken %d", pa, pb, first+1, first+5, first)
	}
	r := run(t, "", nil, 20*time.Second, "start", "--name", "rbad-obs13@127.0.0.1", "--cluster-port-range", "9-3")
	if r.code == 0 || !strings.Contains(r.stderr, "FIRST-LAST") {
		t.Errorf("a bad range: exit %d %q", r.code, r.stderr)
	}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
