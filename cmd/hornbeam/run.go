package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hornbeam-go/hornbeam/host"
	"github.com/hornbeam-go/hornbeam/pybridge"
)

// interruptGrace is how long a script has to unwind after SIGINT/SIGTERM before
// the process exits anyway.
const interruptGrace = 10 * time.Second

func newRunCmd() *cobra.Command {
	var (
		module, code string
		pythonPath   []string
		threads      int
		spinUS       int
		inlineSteps  bool
		logLevel     string
		ml           mlFlags
		nf           nodeFlags
		pf           procFlags
	)
	cmd := &cobra.Command{
		Use:   "run [flags] (SCRIPT.py | -m MODULE | -c CODE) [ARGS...]",
		Short: "Run a Python script or module inside a node, like python3",
		Long: `Run a Python script or module inside a node, like python3, with the hornbeam
modules (hornbeam_erlang, hornbeam_ml, hornbeam_dist) importable.

The script's exit status becomes the process's; an uncaught exception prints its
traceback and exits 1. SIGINT and SIGTERM raise KeyboardInterrupt in the script;
if it has not finished ` + interruptGrace.String() + ` later (or on a second signal) the
process exits with 130 (SIGINT) or 143 (SIGTERM).

Example: hornbeam run -m pytest tests/python`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if logLevel == "" && os.Getenv("HORNBEAM_LOG_LEVEL") == "" {
				logLevel = "warning" // a script's stderr is the script's
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if err := ml.apply(log); err != nil {
				return err
			}
			kind, target, argv, err := mainTarget(module, code, args)
			if err != nil {
				return err
			}
			cluster, err := nf.config()
			if err != nil {
				return err
			}
			node, err := host.New(host.Config{
				Threads:     threads,
				SpinWait:    spinWait(spinUS),
				InlineSteps: inlineSteps,
				PythonPath:  absPaths(pythonPath),
				Argv:        argv,
				Cluster:     cluster,
				Logger:      log,
				Cache:       ml.cacheConfig(),
				Processes:   pf.limits(),
			})
			if err != nil {
				return err
			}
			stop := handleSignals(node.Python())
			rc := node.RunMain(kind, target)
			if sig := stop(); sig == syscall.SIGTERM && rc == 130 {
				rc = 143
			}
			if err := node.Close(); err != nil {
				log.Error("closing node", "err", err)
			}
			return exitError(rc)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after SCRIPT belong to the script
	f.StringVarP(&module, "module", "m", "", "run library module as a script (like python3 -m)")
	f.StringVarP(&code, "command", "c", "", "run a program passed as a string (like python3 -c)")
	f.StringArrayVar(&pythonPath, "pythonpath", nil, "add a directory to sys.path (repeatable)")
	f.IntVar(&threads, "threads", envInt("HORNBEAM_THREADS", 0), "threads for synchronous Python calls (0: 2 per CPU, at least 4)")
	f.IntVar(&spinUS, "spin-us", envInt("HORNBEAM_SPIN_US", 0), "µs a Python thread spins for the next call before sleeping, when nothing else runs (0, the default: never)")
	f.BoolVar(&inlineSteps, "inline-steps", envBool("HORNBEAM_INLINE_STEPS", false), "run a lone coroutine call's first step on the thread that took it while the event loop sleeps (breaks code tied to one thread across an await; see hornbeam start --help)")
	f.StringVar(&logLevel, "log-level", "", "log level: debug, info, warning, error (env HORNBEAM_LOG_LEVEL)")
	nf.add(f, false)
	ml.add(f)
	pf.add(f)
	return cmd
}

func mainTarget(module, code string, args []string) (pybridge.MainKind, string, []string, error) {
	switch {
	case module != "" && code != "":
		return 0, "", nil, errors.New("-m and -c cannot be used together")
	case module != "":
		return pybridge.Module, module, append([]string{module}, args...), nil
	case code != "":
		return pybridge.Code, code, append([]string{"-c"}, args...), nil
	case len(args) == 0:
		return 0, "", nil, errors.New("nothing to run: give SCRIPT.py, -m MODULE or -c CODE")
	default:
		if _, err := os.Stat(args[0]); err != nil {
			return 0, "", nil, fmt.Errorf("cannot open script: %w", err)
		}
		return pybridge.Script, args[0], args, nil
	}
}

// handleSignals turns SIGINT/SIGTERM into KeyboardInterrupt in the script; a
// second signal or the grace period ends the process. The returned function stops
// handling and reports the first signal seen, if any.
func handleSignals(py *pybridge.Interpreter) func() os.Signal {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	first := make(chan os.Signal, 1)
	go func() {
		var sig os.Signal
		select {
		case sig = <-ch:
		case <-done:
			return
		}
		first <- sig
		if sig != syscall.SIGINT || !py.InterruptMainSIGINT() {
			py.InterruptMain(false)
		}
		status := 130
		if sig == syscall.SIGTERM {
			status = 143
		}
		select {
		case <-ch:
		case <-time.After(interruptGrace):
		case <-done:
			return
		}
		fmt.Fprintf(os.Stderr, "hornbeam: %v: exiting without waiting for Python\n", sig)
		os.Exit(status)
	}()
	return func() os.Signal {
		close(done)
		signal.Stop(ch)
		select {
		case s := <-first:
			return s
		default:
			return nil
		}
	}
}

func absPaths(ps []string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		out = append(out, p)
	}
	return out
}

// endRunFlags makes `run ... -m MODULE ARGS` and `run ... -c CODE ARGS` behave as
// in python3, where everything after the module or code belongs to the program:
// it inserts "--" after the module or code so that ARGS (say pytest's -q) are not
// parsed as hornbeam flags. A script path ends hornbeam's flags by itself.
func endRunFlags(root *cobra.Command, args []string) []string {
	cmd, rest, err := root.Find(args)
	if err != nil || cmd.Name() != "run" {
		return args
	}
	start := len(args) - len(rest) // index of the first argument after "run"
	flags := cmd.Flags()
	for i := start; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return args
		}
		name, attached := flagName(a)
		f := flags.Lookup(name)
		if f == nil && !strings.HasPrefix(a, "--") && len(name) == 1 {
			f = flags.ShorthandLookup(name)
		}
		if f == nil {
			return args // cobra will report it
		}
		takesValue := f.NoOptDefVal == ""
		end := i
		if takesValue && !attached {
			end = i + 1
		}
		if f.Name == "module" || f.Name == "command" {
			if end >= len(args) {
				return args
			}
			out := append(append([]string(nil), args[:end+1]...), "--")
			return append(out, args[end+1:]...)
		}
		i = end
	}
	return args
}

// flagName returns the name in "--name", "--name=v", "-x" or "-xVALUE", and
// whether a value is attached.
func flagName(a string) (string, bool) {
	if strings.HasPrefix(a, "--") {
		n, _, found := strings.Cut(a[2:], "=")
		return n, found
	}
	return a[1:2], len(a) > 2
}
