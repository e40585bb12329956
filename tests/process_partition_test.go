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

// newProcNetns is newNetns with names and addresses of this test's own, so
// that it never meets another test's namespace on a shared machine.
func newProcNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) is not installed")
	}
	id := os.Getpid() % 200
	n := &netns{
		name:   fmt.Sprintf("hbproc10-%d", os.Getpid()),
		hostIf: fmt.Sprintf("hbp10%d", os.Getpid()%100000),
		hostIP: fmt.Sprintf("10.232.%d.1", id),
		nsIP:   fmt.Sprintf("10.232.%d.2", id),
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

// A monitor and a link to a process on the far side of a cut link fire with
// 'noconnection' as the node is seen down, and its group members leave.
func TestProcessesAcrossAPartition(t *testing.T) {
	ns := newProcNetns(t)
	const cookie = "proc10-part"
	a := startNode(t, "a@"+ns.hostIP, cookie, "--cluster-host", ns.hostIP)
	pydir, _ := filepath.Abs("testdata/cluster")
	far := exec.Command("ip", "netns", "exec", ns.name, hornbeam, "start", "--name", "far@"+ns.nsIP,
		"--cookie", cookie, "--join", a.addr, "--pythonpath", pydir)
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
	dir := t.TempDir()
	cutAt := filepath.Join(dir, "cut")
	path := writeFile(t, dir, "part.py", waitPeers+`
import json, sys, time
import hornbeam_erlang as he
far = sys.argv[2]
wait_peers([far])
me = he.self()
w = he.spawn(far, "proctest", "wait_forever")
ref = he.monitor(w)
he.trap_exit(True)
l = he.spawn_link(far, "proctest", "wait_forever")
j = he.spawn(far, "proctest", "joiner", ["part", me])
_, jp = he.receive(5000)
deadline = time.time() + 5
while jp not in he.members("part") and time.time() < deadline:
    time.sleep(0.01)
print("ready", flush=True)
down = he.receive(30000, match=lambda m: m[0] == "DOWN")
t_down = time.time()
ex = he.receive(30000, match=lambda m: m[0] == "EXIT")
cut = float(open(sys.argv[1]).read())
print(json.dumps({"down": down[4], "exit": ex[2], "down_s": t_down - cut, "member_after": jp in he.members("part")}))
`)
	cli := exec.Command(hornbeam, "run", "--name", "t@"+ns.hostIP, "--cluster-host", ns.hostIP, "--cookie", cookie,
		"--join", a.addr, "--pythonpath", pydir, path, cutAt, "far@"+ns.nsIP)
	cli.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cli.StdoutPipe()
	var stderr strings.Builder
	cli.Stderr = &stderr
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cli.Process.Pid, syscall.SIGKILL); cli.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("no ready line:\n%s", stderr.String())
	}
	os.WriteFile(cutAt, []byte(fmt.Sprintf("%.6f", float64(time.Now().UnixNano())/1e9)), 0o644)
	ipCmd(t, "link", "set", ns.hostIf, "down")
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	cli.Wait()
	var got struct {
		Down, Exit  string
		DownS       float64 `json:"down_s"`
		MemberAfter bool    `json:"member_after"`
	}
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("%q: %v\n%s", last, err, stderr.String())
	}
	t.Logf("link cut: DOWN after %.3fs", got.DownS)
	if got.Down != "noconnection" || got.Exit != "noconnection" || got.MemberAfter {
		t.Errorf("after the cut: %+v", got)
	}
	if got.DownS > 5 {
		t.Errorf("DOWN after %.1fs, want within 5 s", got.DownS)
	}
}
