package tests

import (
	"encoding/json"
	"path/filepath"
	"testing"
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
	last, stderr := startAcrossCut(t, ns, cookie, a.addr, pydir, path, cutAt).lastLine()
	var got struct {
		Down, Exit  string
		DownS       float64 `json:"down_s"`
		MemberAfter bool    `json:"member_after"`
	}
	if err := json.Unmarshal([]byte(last), &got); err != nil {
		t.Fatalf("%q: %v\n%s", last, err, stderr)
	}
	t.Logf("link cut: DOWN after %.3fs", got.DownS)
	if got.Down != "noconnection" || got.Exit != "noconnection" || got.MemberAfter {
		t.Errorf("after the cut: %+v", got)
	}
	if got.DownS > 5 {
		t.Errorf("DOWN after %.1fs, want within 5 s", got.DownS)
	}
}
