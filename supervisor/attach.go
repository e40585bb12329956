package supervisor

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// Worker is what a worker process was given by its supervisor.
type Worker struct {
	ID        int
	Listeners []net.Listener
	ready     *os.File
	lifeline  *os.File
}

// Attach reports whether this process is a supervisor's worker, and if so
// takes over the files it was given (and removes the variables that said so
// from the environment, so the app's own subprocesses are not workers).
func Attach() (*Worker, bool, error) {
	idStr, ok := os.LookupEnv(envID)
	if !ok {
		return nil, false, nil
	}
	id, err := strconv.Atoi(idStr)
	if err != nil {
		return nil, true, fmt.Errorf("supervisor: %s=%q", envID, idStr)
	}
	n, err := strconv.Atoi(os.Getenv(envListeners))
	if err != nil {
		return nil, true, fmt.Errorf("supervisor: %s=%q", envListeners, os.Getenv(envListeners))
	}
	os.Unsetenv(envID)
	os.Unsetenv(envListeners)
	w := &Worker{ID: id, ready: os.NewFile(fdReady, "ready"), lifeline: os.NewFile(fdLifeline, "lifeline")}
	for i := range n {
		f := os.NewFile(uintptr(fdListeners+i), "listener"+strconv.Itoa(i))
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, true, fmt.Errorf("supervisor: listener %d: %w", i, err)
		}
		w.Listeners = append(w.Listeners, ln)
	}
	return w, true, nil
}

// Ready tells the supervisor this worker serves.
func (w *Worker) Ready() error {
	_, err := w.ready.Write([]byte{1})
	w.ready.Close()
	return err
}

// Orphaned is closed when the supervisor is gone.
func (w *Worker) Orphaned() <-chan struct{} {
	c := make(chan struct{})
	go func() {
		var b [1]byte
		w.lifeline.Read(b[:]) // only ever ends: nobody writes
		close(c)
	}()
	return c
}

// ListenerFile returns a dup of ln's socket to hand to workers.
func ListenerFile(ln net.Listener) (*os.File, error) {
	f, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("supervisor: cannot share a %T", ln)
	}
	return f.File()
}
