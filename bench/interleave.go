package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// target is one server of an interleaved measurement: its command (PORT
// given) and the path loaded.
type target struct {
	cmd  func(int) *exec.Cmd
	path string
}

// measureInterleaved starts every target at once and loads them one at a
// time, each round visiting all of them, the order turning by one each round.
// Rows measured one after another compare different machines: these shared
// machines change speed by a fifth within minutes. Loaded in turn, every
// server's three rounds are spread over the same minutes, and those servers
// not loaded sit idle. With pin, each wrk runs one thread on loadCPU.
func measureInterleaved(ts []target, pin bool, conns int) ([]measured, []error) {
	type live struct {
		cmd   *exec.Cmd
		url   string
		rates []float64
		lats  map[float64]string
		total int
		cpu   float64
	}
	ls := make([]live, len(ts))
	errs := make([]error, len(ts))
	ports := map[int]bool{}
	for i, t := range ts {
		port, err := freePort()
		for err == nil && ports[port] { // two servers on one port would answer for each other
			port, err = freePort()
		}
		if err != nil {
			errs[i] = err
			continue
		}
		ports[port] = true
		c := t.cmd(port)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		c.Env = append(c.Environ(), "HORNBEAM_COOKIE=bench")
		if err := c.Start(); err != nil {
			errs[i] = err
			continue
		}
		defer stopGroup(c, 5*time.Second)
		ls[i] = live{cmd: c, url: fmt.Sprintf("http://127.0.0.1:%d%s", port, t.path), lats: map[float64]string{}}
	}
	for i := range ls {
		if errs[i] == nil {
			errs[i] = waitHTTP(ls[i].url, 20*time.Second)
		}
		if errs[i] == nil {
			wrkCmd(ls[i].url, "1s", pin, conns, false).Run() // warm-up
		}
	}
	for r := range 3 {
		for j := range ls {
			i := (j + r) % len(ls)
			if errs[i] != nil {
				continue
			}
			l := &ls[i]
			cpu0 := groupCPU(l.cmd.Process.Pid)
			rate, n, lat, err := wrkRound(l.url, pin, conns)
			if err != nil {
				errs[i] = err
				continue
			}
			l.cpu += groupCPU(l.cmd.Process.Pid) - cpu0
			l.total += n
			l.rates = append(l.rates, rate)
			l.lats[rate] = lat
		}
	}
	ms := make([]measured, len(ts))
	for i, l := range ls {
		if errs[i] != nil {
			continue
		}
		rate := median(l.rates)
		ms[i] = measured{rate: rate, lat: l.lats[rate]}
		if l.total > 0 {
			ms[i].cpuPer10k = l.cpu / float64(l.total) * 10000
		}
	}
	return ms, errs
}

// wrkCmd loads url over conns connections for d: with pin, one wrk thread
// on loadCPU; else up to two threads where the scheduler puts them.
func wrkCmd(url, d string, pin bool, conns int, latency bool) *exec.Cmd {
	c := "-c" + strconv.Itoa(conns)
	args := []string{"wrk", "-t" + strconv.Itoa(min(conns, 2)), c, "-d" + d}
	if pin {
		args = []string{"taskset", "-c", loadCPU, "wrk", "-t1", c, "-d" + d}
	}
	if latency {
		args = append(args, "--latency")
	}
	return exec.Command(args[0], append(args[1:], url)...)
}

// wrkRound is one round of 3 s: the rate, the requests served and the p50.
func wrkRound(url string, pin bool, conns int) (rate float64, n int, lat string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := wrkCmd(url, "3s", pin, conns, true)
	out, err := exec.CommandContext(ctx, c.Path, c.Args[1:]...).Output()
	if err != nil {
		return 0, 0, "", fmt.Errorf("wrk: %w", err)
	}
	m, k := reqRe.FindSubmatch(out), totalRe.FindSubmatch(out)
	if m == nil || k == nil {
		return 0, 0, "", fmt.Errorf("wrk printed no rate")
	}
	rate, _ = strconv.ParseFloat(string(m[1]), 64)
	n, _ = strconv.Atoi(string(k[1]))
	if l := latRe.FindSubmatch(out); l != nil {
		lat = string(l[1])
	}
	return rate, n, lat, nil
}

// measureGroups measures each run of consecutive targets with the same key
// (one app's servers) interleaved, one run after another.
func measureGroups(ts []target, key func(i int) string, pin bool, conns int) ([]measured, []error) {
	ms, errs := make([]measured, len(ts)), make([]error, len(ts))
	for lo := 0; lo < len(ts); {
		hi := lo + 1
		for hi < len(ts) && key(hi) == key(lo) {
			hi++
		}
		m, e := measureInterleaved(ts[lo:hi], pin, conns)
		copy(ms[lo:hi], m)
		copy(errs[lo:hi], e)
		lo = hi
	}
	return ms, errs
}
