package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// procSection measures hornbeam_erlang's processes beside Erlang's: a message
// round trip between two processes on two nodes and within one node, and
// one-way messages per second.
func procSection(bin string) (string, error) {
	pydir, _ := filepath.Abs("bench/py")
	var b strings.Builder
	b.WriteString("## Processes: `send`/`receive` between two processes\n\n")
	b.WriteString("A small tuple message (`(\"ping\", 42, b\"hello, peer\")`), round trips over 10,000 sequential " +
		"`send` + `receive` (the echo answering from a thread process, or from a task process with `aio.receive`); " +
		"one-way: 100,000 messages sent to a counting process, median of 3 rounds. Erlang: the same with `!`, " +
		"20,000 round trips and 200,000 one-way messages, two local nodes.\n\n")
	hb, err := hornbeamProcs(bin, pydir)
	if err != nil {
		return "", fmt.Errorf("hornbeam processes: %w", err)
	}
	erl, erlErr := peerJSON("bash", "bench/peers/erlang_msg.sh")
	b.WriteString("| system | round trip, two nodes (p50 / p99) | round trip, one node (p50 / p99) | one-way msgs/s, two nodes | one-way msgs/s, one node |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| hornbeam, thread processes | %.1f / %.1f µs | %.1f / %.1f µs | %.0f | %.0f |\n",
		hb["remote_rtt_p50_us"], hb["remote_rtt_p99_us"], hb["local_rtt_p50_us"], hb["local_rtt_p99_us"],
		hb["remote_oneway_per_s"], hb["local_oneway_per_s"])
	fmt.Fprintf(&b, "| hornbeam, echo in a task process (`aio.receive`) | %.1f / %.1f µs | %.1f / %.1f µs | — | — |\n",
		hb["remote_task_rtt_p50_us"], hb["remote_task_rtt_p99_us"], hb["local_task_rtt_p50_us"], hb["local_task_rtt_p99_us"])
	if erlErr == nil {
		fmt.Fprintf(&b, "| Erlang/OTP %v `!` | %.1f / %.1f µs | %.2f / %.2f µs | %.0f | %.0f |\n", erl["otp_release"],
			num(erl, "remote_rtt_p50_us"), num(erl, "remote_rtt_p99_us"), num(erl, "local_rtt_p50_us"), num(erl, "local_rtt_p99_us"),
			num(erl, "remote_oneway_per_s"), num(erl, "local_oneway_per_s"))
		fmt.Fprintf(&b, "\nAgainst Erlang between nodes: round trip %.2fx (goal ≤ 1.5x), one-way rate %.2fx (goal ≥ 1x).\n\n",
			hb["remote_rtt_p50_us"]/num(erl, "remote_rtt_p50_us"), hb["remote_oneway_per_s"]/num(erl, "remote_oneway_per_s"))
	} else {
		fmt.Fprintf(&b, "| Erlang `!` | not measured: %v | | | |\n\n", erlErr)
	}
	b.WriteString("Within one node Erlang's `!` is a pointer hand-off between schedulers of one VM; ours is a " +
		"Python -> Go -> Python crossing with the value encoded to CBOR and decoded again, and a thread " +
		"that waits in `receive` sleeps on a futex and must retake the GIL when woken.\n\n")
	return b.String(), nil
}

func hornbeamProcs(bin, pydir string) (map[string]float64, error) {
	return scriptAgainstNode(bin, pydir, "bench-procs", "psrv@127.0.0.1", "pcli@127.0.0.1", "proc_bench.py")
}
