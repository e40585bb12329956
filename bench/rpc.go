package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// rpcSection measures rpc_call between two hornbeam node processes beside
// Erlang's rpc:call/erpc:call, plain NATS request/reply and dask.
func rpcSection(bin string) (string, error) {
	pydir, _ := filepath.Abs("bench/py")
	var b strings.Builder
	b.WriteString("## Remote calls: `rpc_call` between two nodes\n\n")
	b.WriteString("Two node processes on loopback; the caller is a Python script node (`hornbeam run --name`), " +
		"the callee echoes a 5-byte bytes argument from Python. Sequential latency over 20,000 calls; " +
		"throughput is the median of 3 rounds of 2 s.\n\n")

	hb, err := hornbeamRPC(bin, pydir)
	if err != nil {
		return "", fmt.Errorf("hornbeam rpc: %w", err)
	}
	hbSpin, err := hornbeamRPC(bin, pydir, "HORNBEAM_SPIN_US=150")
	if err != nil {
		return "", fmt.Errorf("hornbeam rpc: %w", err)
	}
	// The same run with routes in clear (HORNBEAM_INSECURE_ROUTES, a
	// benchmark-only switch refused off loopback): what route TLS costs.
	hbPlain, err := hornbeamRPC(bin, pydir, "HORNBEAM_INSECURE_ROUTES=1")
	if err != nil {
		return "", fmt.Errorf("hornbeam rpc without TLS: %w", err)
	}
	fl50, fl99, flRate := natsFloor()
	erl, erlErr := peerJSON("bash", "bench/peers/erlang_rpc.sh")
	dask, daskErr := peerJSON("/usr/bin/python3", "bench/peers/dask_rpc.py")

	b.WriteString("| system | p50 latency | p99 latency | calls/s, 32 callers | calls/s, 64 callers |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| hornbeam `rpc_call`, Python -> Python (32 threads / 32 asyncio tasks with `aio.rpc_call`) | %.1f µs | %.1f µs | %.0f / %.0f | %.0f (tasks) |\n",
		hb["p50_us"], hb["p99_us"], hb["threads32"], hb["tasks32"], hb["tasks64"])
	fmt.Fprintf(&b, "| the same with `--spin-us 150` (threads spin before they park) | %.1f µs | %.1f µs | %.0f / %.0f | %.0f (tasks) |\n",
		hbSpin["p50_us"], hbSpin["p99_us"], hbSpin["threads32"], hbSpin["tasks32"], hbSpin["tasks64"])
	fmt.Fprintf(&b, "| the same as the first row, routes without TLS (benchmark-only switch) | %.1f µs | %.1f µs | %.0f / %.0f | %.0f (tasks) |\n",
		hbPlain["p50_us"], hbPlain["p99_us"], hbPlain["threads32"], hbPlain["tasks32"], hbPlain["tasks64"])
	if erlErr == nil {
		fmt.Fprintf(&b, "| Erlang/OTP %v `rpc:call` | %.1f µs | %.1f µs | %.0f | %.0f |\n",
			erl["otp_release"], num(erl, "rpc_call_p50_us"), num(erl, "rpc_call_p99_us"), num(erl, "rpc_32_callers_per_s"), num(erl, "rpc_64_callers_per_s"))
		fmt.Fprintf(&b, "| Erlang/OTP %v `erpc:call` | %.1f µs | %.1f µs | %.0f | — |\n",
			erl["otp_release"], num(erl, "erpc_call_p50_us"), num(erl, "erpc_call_p99_us"), num(erl, "erpc_32_callers_per_s"))
	} else {
		fmt.Fprintf(&b, "| Erlang `rpc:call` | not measured: %v | | | |\n", erlErr)
	}
	g50, g99, gRate := busGoToGo(false)
	fmt.Fprintf(&b, "| hornbeam bus, Go -> Go (no Python either side) | %s | %s | %.0f | — |\n", us(g50), us(g99), gRate)
	gp50, gp99, gpRate := busGoToGo(true)
	fmt.Fprintf(&b, "| the same, routes without TLS (benchmark-only switch) | %s | %s | %.0f | — |\n", us(gp50), us(gp99), gpRate)
	fmt.Fprintf(&b, "| floor: plain NATS request/reply, Go, two embedded servers in two processes | %s | %s | %.0f | — |\n", us(fl50), us(fl99), flRate)
	if daskErr == nil {
		fmt.Fprintf(&b, "| dask.distributed %v `submit().result()` | %.0f µs | %.0f µs | %.0f | — |\n",
			dask["dask_version"], num(dask, "submit_result_p50_ms")*1000, num(dask, "submit_result_p99_ms")*1000, num(dask, "per_s_32"))
	} else {
		fmt.Fprintf(&b, "| dask `submit().result()` | not measured: %v | | | |\n", daskErr)
	}
	if erlErr == nil {
		fmt.Fprintf(&b, "\nAgainst Erlang `rpc:call`: latency %.2fx by default, %.2fx with `--spin-us 150` (goal ≤ 1.0x); "+
			"throughput %.2fx with 32 callers (goal ≥ 1.5x; best hornbeam form).\n",
			hb["p50_us"]/num(erl, "rpc_call_p50_us"), hbSpin["p50_us"]/num(erl, "rpc_call_p50_us"),
			max(hb["threads32"], hb["tasks32"])/num(erl, "rpc_32_callers_per_s"))
	}
	fmt.Fprintf(&b, "What mutual TLS on routes costs (goal: at most 10%%): Python -> Python p50 latency %+.1f%%, "+
		"throughput with 32 tasks %+.1f%%; Go -> Go p50 latency %+.1f%%, throughput %+.1f%%.\n",
		100*(hb["p50_us"]/hbPlain["p50_us"]-1), 100*(hb["tasks32"]/hbPlain["tasks32"]-1),
		100*(float64(g50)/float64(gp50)-1), 100*(gRate/gpRate-1))
	fmt.Fprintf(&b, "Against the plain NATS floor: latency %.2fx by default, %.2fx with `--spin-us 150`.\n\n",
		hb["p50_us"]/(float64(fl50.Nanoseconds())/1000), hbSpin["p50_us"]/(float64(fl50.Nanoseconds())/1000))
	b.WriteString("Reading these figures: on these VMs an idle CPU halts at once (guest halt-polling is off), " +
		"so every wake-up of a sleeping thread pays a hypervisor round trip of tens of µs. " +
		"Letting idle Python threads spin (`--spin-us`) takes some of those wake-ups off a call's path, " +
		"but the other processes' wake-ups remain, and the spinning takes CPU from them: on 2026-12-04 the p50 was 200 µs " +
		"with 150 µs of spinning and 205 µs without, so nodes do not spin by default. " +
		"Throughput is bounded by the Python side, not the bus (Go -> Go through the same bus matches Erlang): " +
		"every reply wakes a Python thread that must retake the GIL, and with 32 caller threads each wake-up is " +
		"a futex round trip; the asyncio form (`aio.rpc_call`) avoids the per-thread wake-ups and does best.\n\n")
	return b.String(), nil
}

func num(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}

func hornbeamRPC(bin, pydir string, extraEnv ...string) (map[string]float64, error) {
	return scriptAgainstNode(bin, pydir, "bench-cookie", "srv@127.0.0.1", "cli@127.0.0.1", "rpc_bench.py", extraEnv...)
}

// scriptAgainstNode starts a serving node named server, runs bench/py/script
// from a script node named client joined to it (the script gets the server's
// name and a file for its JSON figures), and returns those figures.
func scriptAgainstNode(bin, pydir, cookie, server, client, script string, extraEnv ...string) (map[string]float64, error) {
	env := append(append(os.Environ(), "HORNBEAM_COOKIE="+cookie), extraEnv...)
	join, _, stop, err := startNodeProc(bin, env, "--name", server, "--pythonpath", pydir)
	if err != nil {
		return nil, err
	}
	defer stop()
	out := filepath.Join(os.TempDir(), fmt.Sprintf("hornbeam-%s-%d.json", strings.TrimSuffix(script, ".py"), os.Getpid()))
	defer os.Remove(out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli := exec.CommandContext(ctx, bin, "run", "--name", client, "--join", join, "--pythonpath", pydir,
		filepath.Join(pydir, script), server, out)
	cli.Env = env
	cli.Stdout, cli.Stderr = os.Stderr, os.Stderr
	if err := cli.Run(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var res map[string]float64
	return res, json.Unmarshal(raw, &res)
}

// peerJSON runs a peer benchmark script that prints one JSON line.
func peerJSON(name string, args ...string) (map[string]any, error) {
	if _, err := os.Stat(args[len(args)-1]); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var m map[string]any
	return m, json.Unmarshal([]byte(lines[len(lines)-1]), &m)
}

// natsChild is the second process of the NATS floor: an embedded server with a
// route listener and an echo responder. It prints its route address and runs
// until stdin closes.
func natsChild() {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: "floor", Host: "127.0.0.1", Port: -1}})
	if err != nil {
		panic(err)
	}
	go s.Start()
	s.ReadyForConnections(10 * time.Second)
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		panic(err)
	}
	nc.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) })
	nc.Flush()
	fmt.Println(s.ClusterAddr().String())
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// natsFloor measures request/reply between two embedded servers in two processes.
func natsFloor() (p50, p99 time.Duration, perSec float64) {
	addr, stop := startChild("-nats-child")
	defer stop()
	route, _ := url.Parse("nats-route://" + addr)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{Name: "floor", Host: "127.0.0.1", Port: -1}, Routes: []*url.URL{route}})
	if err != nil {
		panic(err)
	}
	go s.Start()
	defer s.Shutdown()
	s.ReadyForConnections(10 * time.Second)
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	for {
		if _, err := nc.Request("echo", []byte("hello"), time.Second); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	call := func() { nc.Request("echo", []byte("hello"), time.Second) }
	p50, p99, _ = latencies(call, 2000, 20000)
	return p50, p99, throughput(call, 32, 3, 2*time.Second)
}
