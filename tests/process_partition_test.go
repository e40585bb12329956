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

// A monitor and a link to a process on the far side of a cut link fire with
// 'noconnection' as the node is seen down, and its group members leave.
func TestProcessesAcrossAPartition(t *testing.T) {
	ns := newNetns(t, "hbproc10-", "hbp10", 232)
	const cookie = "proc10-part"
	a := startNode(t, "a@"+ns.hostIP, cookie, "--cluster-host", ns.hostIP)
	startFarNode(t, ns, cookie, a.addr)
	pydir, _ := filepath.Abs("testdata/cluster")
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
