// Package cpusched puts the threads of this process under Linux's SCHED_BATCH
// policy.
//
// A node's threads hand work to one another: a goroutine queues a request for
// the Python thread, which queues the response for a goroutine. Under the
// default policy each of those wake-ups preempts the thread that made it when
// both share a CPU, so on a busy core one request costs several thread
// switches, and every switch takes the other thread's cache with it.
// SCHED_BATCH keeps the CPU's share the same (the scheduler stays fair and
// preempts at the tick) but lets a woken thread wait until the one running
// blocks: a thread finishes the work it has, then the next takes all that was
// queued for it. On a core with nothing else to run nothing changes.
package cpusched

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Policies from <linux/sched.h>; syscall does not name them.
const (
	schedOther       = 0
	schedBatch       = 3
	schedResetOnFork = 0x40000000 // or'ed into a policy
)

// SetBatch puts every thread of the process that runs under the default
// policy (SCHED_OTHER) under SCHED_BATCH; a policy chosen for the process
// (`chrt`: real-time, idle) is left as it is. Threads
// created afterwards inherit the policy from the thread that creates them,
// and child processes from their parent. A thread created by one not yet
// switched while SetBatch runs is caught by a second pass.
func SetBatch() error {
	for pass := 0; pass < 3; pass++ {
		changed, err := setAll()
		if err != nil || changed == 0 {
			return err
		}
	}
	return nil
}

// setAll switches the threads not yet under SCHED_BATCH and says how many it
// switched.
func setAll() (int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("cpusched: listing threads: %w", err)
	}
	changed := 0
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pol, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
		if errno != 0 || pol&^schedResetOnFork != schedOther {
			// Already batch, or a policy someone chose (chrt: real-time,
			// idle), which is theirs to keep; or the thread is gone.
			continue
		}
		var param struct{ priority int32 } // must be 0 for SCHED_BATCH
		_, _, errno = syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), schedBatch, uintptr(unsafe.Pointer(&param)))
		switch {
		case errno == 0:
			changed++
		case errors.Is(errno, syscall.ESRCH): // the thread ended meanwhile
		default:
			return changed, fmt.Errorf("cpusched: thread %d: %w", tid, errno)
		}
	}
	return changed, nil
}
