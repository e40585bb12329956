package tests

import (
	"path/filepath"
	"testing"
	"time"
)

// Deadlines cross the wire as a time budget, so nodes whose clocks are a
// minute apart (simulated with HORNBEAM_TEST_CLOCK_SKEW_MS) still time calls
// out exactly when their callers asked, and TLS between them still works.
func TestClockSkewKeepsTimeoutsRight(t *testing.T) {
	const cookie = "sec8-skew"
	pydir, _ := filepath.Abs("testdata/cluster")
	start := func(name, skew, join string) *node {
		args := []string{"--name", name, "--cookie", cookie, "--pythonpath", pydir, "--cluster-host", "127.0.0.1"}
		if join != "" {
			args = append(args, "--join", join)
		}
		p, err := startProc(t, "", []string{"HORNBEAM_TEST_CLOCK_SKEW_MS=" + skew}, args...)
		if err != nil {
			t.Fatal(err)
		}
		return &node{proc: p, name: name, addr: p.cluster}
	}
	ahead := start("ahead@127.0.0.1", "60000", "")
	start("behind@127.0.0.1", "-60000", ahead.addr)
	var got map[string]any
	script(t, "t@127.0.0.1", cookie, ahead.addr, waitPeers+`
import json, time
from hornbeam_erlang import rpc_call, RPCTimeout
wait_peers(["ahead@127.0.0.1", "behind@127.0.0.1"])
out = {}
for n in ["ahead@127.0.0.1", "behind@127.0.0.1"]:
    # A call well within its timeout answers, whichever way the clock is off.
    out[n + " fast"] = rpc_call(n, "cltest", "sleep", [0.1], 2000)
    t0 = time.monotonic()
    try:
        rpc_call(n, "cltest", "sleep", [3], 1000)
        out[n + " slow"] = "answered"
    except RPCTimeout:
        out[n + " slow"] = round(time.monotonic() - t0, 2)
# Node to node, both skewed, in both directions.
out["ahead->behind"] = rpc_call("ahead@127.0.0.1", "cltest", "relay", ["behind@127.0.0.1", "cltest", "sleep", [0.1]], 8000)
out["behind->ahead"] = rpc_call("behind@127.0.0.1", "cltest", "relay", ["ahead@127.0.0.1", "cltest", "sleep", [0.1]], 8000)
print(json.dumps(out))
`, 60*time.Second, &got)
	t.Logf("%v", got)
	for _, n := range []string{"ahead@127.0.0.1", "behind@127.0.0.1"} {
		if got[n+" fast"] != n {
			t.Errorf("call to %s within its timeout: %v", n, got[n+" fast"])
		}
		if s, ok := got[n+" slow"].(float64); !ok || s < 0.9 || s > 2.5 {
			t.Errorf("call to %s with a 1 s timeout ended after %v, want about 1 s", n, got[n+" slow"])
		}
	}
	if got["ahead->behind"] != "behind@127.0.0.1" || got["behind->ahead"] != "ahead@127.0.0.1" {
		t.Errorf("calls between skewed nodes: %v", got)
	}
}
