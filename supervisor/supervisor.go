// Package supervisor runs a node's worker processes, as gunicorn's arbiter
// does: every worker gets the node's listening sockets, a worker that dies is
// replaced (and its death logged), and the set can be reloaded, grown and
// shrunk while the sockets stay open, so no connection is refused meanwhile.
//
// A worker process finds what it was given with Attach. It tells the
// supervisor it is ready by writing to a pipe, and it sees the supervisor die
// (even by SIGKILL) as the end of a second pipe, on which it should exit.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Environment variables that tell a process it is a worker.
const (
	envID        = "HORNBEAM_WORKER_ID"
	envListeners = "HORNBEAM_WORKER_LISTENERS"
)

// File descriptors of a worker: the ready pipe, the lifeline, then the listeners.
const (
	fdReady     = 3
	fdLifeline  = 4
	fdListeners = 5
)

// Config configures a Supervisor.
type Config struct {
	Workers int
	// Command returns a fresh, unstarted command for worker id; the supervisor
	// adds the files and environment a worker needs.
	Command func(id int) *exec.Cmd
	// Listeners are passed to every worker, in order.
	Listeners []*os.File
	// BootTimeout bounds how long a worker may take to become ready; 0 = 120 s.
	BootTimeout time.Duration
	// StopTimeout is how long a worker gets to finish its requests after
	// SIGTERM before it is killed; 0 = 30 s.
	StopTimeout time.Duration
	// OnFirstReady runs once, when the first worker is ready.
	OnFirstReady func()
	// OnReplace, if set, runs each time a worker that was serving exits
	// unasked (died, or retired by --max-requests) and a fresh one replaces it.
	OnReplace func()
	Logger    *slog.Logger
}

// ErrBoot reports that a worker exited or timed out before it was ready.
var ErrBoot = errors.New("worker failed to boot")

type phase int

const (
	booting phase = iota
	ready
	stopping
)

type worker struct {
	id      int
	gen     int
	cmd     *exec.Cmd
	started time.Time
	readyAt time.Time
	phase   phase
}

type event struct {
	w    *worker
	kind string // "ready", "exit", "boot-timeout"
	err  error
}

// Supervisor keeps Config.Workers workers running.
type Supervisor struct {
	cfg        Config
	log        *slog.Logger
	lifeline   *os.File // the write end, never written: its close is the signal
	lifeR      *os.File
	events     chan event
	cmds       chan func()
	done       chan struct{} // closed when Run returns
	workers    map[*worker]bool
	target     int
	gen        int
	nextID     int
	backoff    time.Duration
	notBefore  time.Time
	retry      *time.Timer
	firstReady bool
	// crashLoop counts the served workers in a row that died soon after
	// they became ready: past a few, respawns back off.
	crashLoop int
}

// New makes a Supervisor; Run starts it.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("supervisor: %d workers: want at least 1", cfg.Workers)
	}
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = 120 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	return &Supervisor{cfg: cfg, log: cfg.Logger, lifeline: w, lifeR: r,
		events: make(chan event, 64), cmds: make(chan func()), done: make(chan struct{}),
		workers: map[*worker]bool{}, target: cfg.Workers}, nil
}

// Run starts the workers and keeps them running until ctx ends, then stops
// them gracefully (SIGTERM, then SIGKILL after StopTimeout). It returns an
// ErrBoot error if none of the first workers became ready.
func (s *Supervisor) Run(ctx context.Context) error {
	defer close(s.done)
	defer s.lifeline.Close()
	defer s.lifeR.Close()
	s.reconcile()
	for {
		select {
		case <-ctx.Done():
			s.stopAll()
			return nil
		case f := <-s.cmds:
			f()
		case e := <-s.events:
			if err := s.handle(e); err != nil {
				s.stopAll()
				return err
			}
		}
		s.reconcile()
	}
}

// do runs f on Run's goroutine and waits for it; it does nothing once Run has returned.
func (s *Supervisor) do(f func()) {
	ran := make(chan struct{})
	select {
	case s.cmds <- func() { f(); close(ran) }:
		<-ran
	case <-s.done:
	}
}

// Reload replaces every worker with a fresh one (new interpreters, the app's
// code read again): each new worker that is ready retires an old one, so the
// node keeps serving throughout. If a new worker fails to boot, the old ones
// keep running.
func (s *Supervisor) Reload() {
	s.do(func() {
		s.gen++
		s.log.Info("reloading workers", "workers", s.target)
	})
}

// Grow adds a worker (SIGTTIN).
func (s *Supervisor) Grow() {
	s.do(func() { s.target++; s.log.Info("adding a worker", "workers", s.target) })
}

// Shrink retires a worker, keeping at least one (SIGTTOU).
func (s *Supervisor) Shrink() {
	s.do(func() {
		if s.target > 1 {
			s.target--
			s.log.Info("removing a worker", "workers", s.target)
		}
	})
}

func (s *Supervisor) handle(e event) error {
	w := e.w
	switch e.kind {
	case "ready":
		if w.phase == booting && s.workers[w] {
			w.phase, w.readyAt = ready, time.Now()
			s.log.Info("worker ready", "worker", w.id, "pid", w.cmd.Process.Pid, "boot", time.Since(w.started).Round(time.Millisecond))
			if !s.firstReady {
				s.firstReady = true
				if s.cfg.OnFirstReady != nil {
					s.cfg.OnFirstReady()
				}
			}
		}
	case "boot-timeout":
		if w.phase == booting && s.workers[w] {
			s.log.Error("worker did not become ready in time; killing it", "worker", w.id, "pid", w.cmd.Process.Pid, "timeout", s.cfg.BootTimeout)
			w.cmd.Process.Kill()
		}
	case "exit":
		delete(s.workers, w)
		pid := w.cmd.Process.Pid
		switch {
		case w.phase == stopping:
			s.log.Info("worker stopped", "worker", w.id, "pid", pid)
		case w.phase == booting:
			s.log.Error("worker failed to boot", "worker", w.id, "pid", pid, "status", status(e.err))
			if !s.firstReady {
				// As gunicorn's arbiter: an app that cannot start is not
				// retried forever; the node stops and says why.
				return fmt.Errorf("%w: %s (see the log above)", ErrBoot, status(e.err))
			}
			s.abandonReload(w)
			s.delay()
		case e.err == nil:
			// A clean exit it was not asked for: --max-requests retired it.
			s.log.Info("worker retired", "worker", w.id, "pid", pid, "served", time.Since(w.started).Round(time.Second))
			s.replaced()
		default:
			s.log.Error("worker died; replacing it", "worker", w.id, "pid", pid, "status", status(e.err),
				"lived", time.Since(w.started).Round(time.Millisecond))
			s.replaced()
			// A worker that served dies of a request (a segfault in an
			// extension): replace it at once, as gunicorn does, so the node
			// is not left dark; back off only when workers keep dying as
			// soon as they are ready.
			switch {
			case time.Since(w.readyAt) < crashWindow:
				s.crashLoop++
				if s.crashLoop > crashesBeforeBackoff {
					s.delay()
				}
			default:
				s.crashLoop, s.backoff = 0, 0
			}
		}
	}
	return nil
}

// abandonReload keeps the old workers when a reloaded one fails to boot.
func (s *Supervisor) abandonReload(failed *worker) {
	old := false
	for w := range s.workers {
		if w.gen < failed.gen && w.phase != stopping {
			old = true
		}
	}
	if !old {
		return
	}
	s.log.Error("reload failed: keeping the running workers")
	for w := range s.workers {
		switch {
		case w.gen == failed.gen && w.phase == booting:
			s.stop(w) // the rest of the failed set would fail alike
		case w.phase != stopping:
			w.gen = s.gen // the running workers are the current set again
		}
	}
}

// A served worker that dies within crashWindow of becoming ready counts
// toward a crash loop; respawns back off after crashesBeforeBackoff such
// deaths in a row.
const (
	crashWindow          = time.Second
	crashesBeforeBackoff = 5
)

// delay backs off respawning a worker that keeps dying: 0.1 s doubling to 10 s.
func (s *Supervisor) delay() {
	s.backoff = min(max(2*s.backoff, 100*time.Millisecond), 10*time.Second)
	s.notBefore = time.Now().Add(s.backoff)
}

// reconcile starts and stops workers toward target workers of the current
// generation. Old-generation workers are retired only as new ones are ready.
func (s *Supervisor) reconcile() {
	var current, readyCurrent, old []*worker
	for w := range s.workers {
		switch {
		case w.phase == stopping:
		case w.gen == s.gen:
			current = append(current, w)
			if w.phase == ready {
				readyCurrent = append(readyCurrent, w)
			}
		default:
			old = append(old, w)
		}
	}
	for len(current) < s.target {
		if wait := time.Until(s.notBefore); wait > 0 {
			if s.retry == nil {
				s.retry = time.AfterFunc(wait, func() { s.do(func() { s.retry = nil }) })
			}
			break
		}
		w, err := s.spawn()
		if err != nil {
			s.log.Error("starting a worker", "err", err)
			s.delay()
			continue
		}
		current = append(current, w)
	}
	for len(old) > 0 && len(readyCurrent)+len(old) > s.target {
		s.stop(oldest(old))
		old = remove(old, oldest(old))
	}
	for len(current) > s.target {
		w := oldest(current)
		s.stop(w)
		current = remove(current, w)
	}
}

func oldest(ws []*worker) *worker {
	o := ws[0]
	for _, w := range ws[1:] {
		if w.started.Before(o.started) {
			o = w
		}
	}
	return o
}

func remove(ws []*worker, w *worker) []*worker {
	for i, x := range ws {
		if x == w {
			return append(ws[:i], ws[i+1:]...)
		}
	}
	return ws
}

func (s *Supervisor) spawn() (*worker, error) {
	s.nextID++
	w := &worker{id: s.nextID, gen: s.gen, cmd: s.cfg.Command(s.nextID), started: time.Now()}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	w.cmd.ExtraFiles = append([]*os.File{readyW, s.lifeR}, s.cfg.Listeners...)
	if w.cmd.Env == nil {
		w.cmd.Env = os.Environ()
	}
	w.cmd.Env = append(w.cmd.Env, envID+"="+strconv.Itoa(w.id), envListeners+"="+strconv.Itoa(len(s.cfg.Listeners)))
	err = w.cmd.Start()
	readyW.Close()
	if err != nil {
		readyR.Close()
		return nil, err
	}
	s.workers[w] = true
	s.log.Debug("worker starting", "worker", w.id, "pid", w.cmd.Process.Pid)
	go func() {
		var b [1]byte
		n, _ := readyR.Read(b[:])
		readyR.Close()
		if n == 1 {
			s.events <- event{w: w, kind: "ready"}
		}
	}()
	boot := time.AfterFunc(s.cfg.BootTimeout, func() { s.events <- event{w: w, kind: "boot-timeout"} })
	go func() {
		err := w.cmd.Wait()
		boot.Stop()
		s.events <- event{w: w, kind: "exit", err: err}
	}()
	return w, nil
}

func (s *Supervisor) stop(w *worker) {
	if w.phase == stopping {
		return
	}
	w.phase = stopping
	w.cmd.Process.Signal(syscall.SIGTERM)
	p := w.cmd.Process
	// Kill is a no-op for a process already waited for (Go holds a pidfd).
	time.AfterFunc(s.cfg.StopTimeout+time.Second, func() { p.Kill() })
}

// stopAll stops every worker and waits for them.
func (s *Supervisor) stopAll() {
	for w := range s.workers {
		s.stop(w)
	}
	deadline := time.After(s.cfg.StopTimeout + 2*time.Second)
	for len(s.workers) > 0 {
		select {
		case e := <-s.events:
			if e.kind == "exit" {
				delete(s.workers, e.w)
			}
		case <-deadline:
			for w := range s.workers {
				s.log.Warn("worker did not stop in time; killing it", "worker", w.id, "pid", w.cmd.Process.Pid)
				w.cmd.Process.Kill()
			}
			deadline = time.After(5 * time.Second)
		}
	}
}

func status(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
