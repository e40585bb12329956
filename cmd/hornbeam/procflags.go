package main

import (
	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam/process"
)

// procFlags bound hornbeam_erlang's processes on a node.
type procFlags struct {
	maxProcesses, mailboxMessages, mailboxMiB int
}

func (f *procFlags) add(fs *pflag.FlagSet) {
	fs.IntVar(&f.maxProcesses, "max-processes", envInt("HORNBEAM_MAX_PROCESSES", process.DefaultMaxThreads),
		"processes running synchronous functions (a thread each) at once; coroutine processes are not counted (env HORNBEAM_MAX_PROCESSES)")
	fs.IntVar(&f.mailboxMessages, "mailbox-max-messages", envInt("HORNBEAM_MAILBOX_MAX_MESSAGES", process.DefaultMaxMessages),
		"messages waiting in one process's mailbox; beyond, a local sender gets Busy and a message from another node is dropped and counted")
	fs.IntVar(&f.mailboxMiB, "mailbox-max-mib", envInt("HORNBEAM_MAILBOX_MAX_MIB", process.DefaultMaxBytes>>20),
		"MiB of messages waiting in one process's mailbox")
}

func (f *procFlags) limits() process.Limits {
	return process.Limits{MaxThreads: f.maxProcesses, MaxMessages: f.mailboxMessages, MaxBytes: f.mailboxMiB << 20}
}
