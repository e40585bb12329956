package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netns is a network namespace joined to the host by a veth pair, made and
// removed by the test: a second "host" whose link can be cut.
type netns struct {
	name, hostIf, hostIP, nsIP string
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNetns makes a network namespace joined to this one by a veth pair with
// the addresses 10.SUBNET.X.1 (here) and 10.SUBNET.X.2 (there). name and
// ifPrefix (plus this process's pid) and subnet keep each test's namespace
// apart from another's on a shared machine.
func newNetns(t *testing.T, name, ifPrefix string, subnet int) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) is not installed")
	}
	id := os.Getpid() % 200
	n := &netns{
		name:   fmt.Sprintf("%s%d", name, os.Getpid()),
		hostIf: fmt.Sprintf("%s%d", ifPrefix, os.Getpid()%100000),
		// An address pair inside our own namespaces only; nothing else is reached.
		hostIP: fmt.Sprintf("10.%d.%d.1", subnet, id),
		nsIP:   fmt.Sprintf("10.%d.%d.2", subnet, id),
	}
	nsIf := n.hostIf + "n"
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", n.hostIf).Run()
		exec.Command("ip", "netns", "del", n.name).Run()
	})
	ipCmd(t, "link", "add", n.hostIf, "type", "veth", "peer", "name", nsIf)
	ipCmd(t, "link", "set", nsIf, "netns", n.name)
	ipCmd(t, "addr", "add", n.hostIP+"/30", "dev", n.hostIf)
	ipCmd(t, "link", "set", n.hostIf, "up")
	ipCmd(t, "netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/30", "dev", nsIf)
	ipCmd(t, "netns", "exec", n.name, "ip", "link", "set", nsIf, "up")
	ipCmd(t, "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// startFarNode starts far@NS-ADDRESS inside ns, joined to join, and waits
// until it has started; it is killed (by process group) when the test ends.
func startFarNode(t *testing.T, ns *netns, cookie, join string) {
	t.Helper()
	// `ip netns exec NAME hornbeam start ...`.
	pydir, _ := filepath.Abs("testdata/cluster")
	far := exec.Command("ip", "netns", "exec", ns.name, hornbeam, "start", "--name", "far@"+ns.nsIP,
		"--cookie", cookie, "--join", join, "--pythonpath", pydir)
	far.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	farErr, _ := far.StderrPipe()
	if err := far.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-far.Process.Pid, syscall.SIGKILL); far.Wait() })
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(farErr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "node started") {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("far node did not start")
	}
}

// A node on the far side of a cut link is reported down within 5 s, and up
// again when the link returns.
func TestClusterPartition(t *testing.T) {
	ns := newNetns(t, "hbpart", "hbh", 231)
	const cookie = "cpart"
	a := startNode(t, "a@"+ns.hostIP, cookie, "--cluster-host", ns.hostIP)
	startFarNode(t, ns, cookie, a.addr)
	pydir, _ := filepath.Abs("testdata/cluster")

	dir := t.TempDir()
	cutAt := filepath.Join(dir, "cut")
	path := writeFile(t, dir, "part.py", waitPeers+`
import json, os, sys, time
from hornbeam_erlang import *
far = sys.argv[2]
wait_peers([far])
assert rpc_call(far, "cltest", "whoami", []) == far
events = []
monitor_node(far, lambda ev, n: events.append((ev, time.time())))
print("ready", flush=True)
deadline = time.time() + 40
while len(events) < 2 and time.time() < deadline:
    time.sleep(0.01)
cut = float(open(sys.argv[1]).read())
after = rpc_call(far, "cltest", "whoami", []) if len(events) == 2 else None
print(json.dumps({"events": [(ev, t - cut) for ev, t in events], "after": after}))
`)
	run := startAcrossCut(t, ns, cookie, a.addr, pydir, path, cutAt)
	time.Sleep(6 * time.Second)
	ipCmd(t, "link", "set", ns.hostIf, "up")
	last, stderr := run.lastLine()
	var got struct {
		Events [][2]any
		After  any
	}
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("%q: %v\n%s", last, err, stderr)
	}
	if len(got.Events) != 2 || got.Events[0][0] != "nodedown" || got.Events[1][0] != "nodeup" {
		t.Fatalf("events %v\n%s", got.Events, stderr)
	}
	down := got.Events[0][1].(float64)
	t.Logf("link cut: nodedown after %.3fs; nodeup %.3fs after the link returned", down, got.Events[1][1].(float64)-6)
	if down > 5 {
		t.Errorf("partitioned node reported down after %.1fs, want within 5 s", down)
	}
	if got.After != "far@"+ns.nsIP {
		t.Errorf("after healing, the far node answered %v", got.After)
	}
}

// acrossCut is a `hornbeam run` script node on the host side of a netns link.
type acrossCut struct {
	cmd    *exec.Cmd
	out    *bufio.Scanner
	stderr strings.Builder
}

// startAcrossCut runs the script at path as node t@ns.hostIP joined to join,
// with arguments cutAt and the far node's name; once it prints "ready", the
// time is written to cutAt and the link is cut. The process group is killed
// when the test ends.
func startAcrossCut(t *testing.T, ns *netns, cookie, join, pydir, path, cutAt string) *acrossCut {
	t.Helper()
	r := &acrossCut{cmd: exec.Command(hornbeam, "run", "--name", "t@"+ns.hostIP, "--cluster-host", ns.hostIP,
		"--cookie", cookie, "--join", join, "--pythonpath", pydir, path, cutAt, "far@"+ns.nsIP)}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := r.cmd.StdoutPipe()
	r.cmd.Stderr = &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL); r.cmd.Wait() })
	r.out = bufio.NewScanner(stdout)
	if !r.out.Scan() || r.out.Text() != "ready" {
		t.Fatalf("no ready line:\n%s", r.stderr.String())
	}
	os.WriteFile(cutAt, []byte(fmt.Sprintf("%.6f", float64(time.Now().UnixNano())/1e9)), 0o644)
	ipCmd(t, "link", "set", ns.hostIf, "down")
	return r
}

// lastLine waits for the script to end and returns its last line of output
// and its stderr.
func (r *acrossCut) lastLine() (string, string) {
	var last string
	for r.out.Scan() {
		last = r.out.Text()
	}
	r.cmd.Wait()
	return last, r.stderr.String()
}
