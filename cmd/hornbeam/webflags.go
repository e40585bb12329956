package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam/web"
)

// webFlags are start's HTTP flags, named as gunicorn's.
type webFlags struct {
	binds            []string
	workerClass      string
	timeout          float64
	gracefulTimeout  float64
	limitConcurrency int
	rootPath         string
	accessLogFile    string
	lifespan         string
	keepAlive        float64
	certFile         string
	keyFile          string
	factory          bool
	headerTimeout    float64
	bodyTimeout      float64
	noServerHeader   bool
	wsMax            int
	wsPingInterval   float64
	wsPingTimeout    float64
}

func (f *webFlags) add(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.binds, "bind", "b", envList("HORNBEAM_BIND"), "HOST:PORT or unix:PATH to serve on (repeatable; env HORNBEAM_BIND; default 0.0.0.0:$PORT, else 127.0.0.1:8000)")
	fs.StringVarP(&f.workerClass, "worker-class", "k", envStr("HORNBEAM_WORKER_CLASS", ""), "wsgi or asgi (ASGI 3: http, websocket, lifespan); default: asgi if the app is a coroutine function or has an async __call__, else wsgi")
	fs.StringVar(&f.lifespan, "lifespan", envStr("HORNBEAM_LIFESPAN", "auto"), "ASGI lifespan: auto (use it if the app supports it), on, off")
	fs.Float64VarP(&f.timeout, "timeout", "t", envFloat("HORNBEAM_TIMEOUT", 30), "seconds an app may take for a request; past it the client gets 504")
	fs.Float64Var(&f.gracefulTimeout, "graceful-timeout", envFloat("HORNBEAM_GRACEFUL_TIMEOUT", 30), "seconds requests in flight get to finish on SIGTERM")
	fs.IntVar(&f.limitConcurrency, "limit-concurrency", envInt("HORNBEAM_LIMIT_CONCURRENCY", 1024), "requests served at once; beyond, 503")
	fs.StringVar(&f.rootPath, "root-path", os.Getenv("HORNBEAM_ROOT_PATH"), "the prefix the app is mounted under (SCRIPT_NAME)")
	fs.Float64Var(&f.keepAlive, "keep-alive", envFloat("HORNBEAM_KEEP_ALIVE", 5), "seconds an idle kept-alive connection stays open")
	fs.StringVar(&f.certFile, "certfile", os.Getenv("HORNBEAM_CERTFILE"), "TLS certificate (PEM); with --keyfile serves HTTPS and HTTP/2")
	fs.StringVar(&f.keyFile, "keyfile", os.Getenv("HORNBEAM_KEYFILE"), "TLS private key (PEM)")
	fs.Float64Var(&f.headerTimeout, "header-timeout", envFloat("HORNBEAM_HEADER_TIMEOUT", 10), "seconds a client may take to send a request's headers; past it, 408 and the connection closes (slowloris)")
	fs.Float64Var(&f.bodyTimeout, "body-timeout", envFloat("HORNBEAM_BODY_TIMEOUT", 30), "seconds a client may stall while sending a request body; past it, 408 and the connection closes")
	fs.BoolVar(&f.noServerHeader, "no-server-header", false, "send no Server header")
	fs.IntVar(&f.wsMax, "ws-max", envInt("HORNBEAM_WS_MAX", 4096), "websockets open at once (apart from --limit-concurrency); beyond, 503")
	fs.Float64Var(&f.wsPingInterval, "ws-ping-interval", envFloat("HORNBEAM_WS_PING_INTERVAL", 20), "seconds between pings on each websocket (0: no pings)")
	fs.Float64Var(&f.wsPingTimeout, "ws-ping-timeout", envFloat("HORNBEAM_WS_PING_TIMEOUT", 20), "seconds a websocket ping may go unanswered before the connection closes")
	fs.BoolVar(&f.factory, "factory", false, "APP is a factory: call it (no arguments) for the app")
	fs.StringVar(&f.accessLogFile, "access-logfile", os.Getenv("HORNBEAM_ACCESS_LOGFILE"), "write an access log (common log format) to this file; '-' is stdout")
}

func (f *webFlags) config(app string, log *slog.Logger) (*web.Config, error) {
	if f.workerClass != "" && f.workerClass != "wsgi" && f.workerClass != "asgi" {
		return nil, fmt.Errorf("--worker-class %q: want wsgi or asgi", f.workerClass)
	}
	if f.lifespan != "auto" && f.lifespan != "on" && f.lifespan != "off" {
		return nil, fmt.Errorf("--lifespan %q: want auto, on or off", f.lifespan)
	}
	if f.timeout <= 0 || f.gracefulTimeout < 0 || f.headerTimeout <= 0 || f.bodyTimeout <= 0 {
		return nil, errors.New("--timeout, --header-timeout and --body-timeout must be positive and --graceful-timeout not negative")
	}
	if f.wsMax <= 0 || f.wsPingInterval < 0 || f.wsPingTimeout <= 0 {
		return nil, errors.New("--ws-max and --ws-ping-timeout must be positive and --ws-ping-interval not negative")
	}
	wsPing := secDuration(f.wsPingInterval)
	if wsPing == 0 {
		wsPing = -1 // no pings
	}
	binds := f.binds
	if len(binds) == 0 {
		binds = []string{"127.0.0.1:8000"}
		if p := os.Getenv("PORT"); p != "" {
			binds = []string{"0.0.0.0:" + p}
		}
	}
	for _, b := range binds {
		if err := checkBind(b); err != nil {
			return nil, err
		}
	}
	var tracebacks io.Writer
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tracebacks = os.Stderr // a person reads it: tracebacks as Python prints them
	}
	var access io.Writer
	switch f.accessLogFile {
	case "":
	case "-":
		access = os.Stdout
	default:
		fh, err := os.OpenFile(f.accessLogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--access-logfile: %w", err)
		}
		access = fh
	}
	return &web.Config{App: app, ASGI: f.workerClass == "asgi", Detect: f.workerClass == "", Lifespan: f.lifespan, Binds: binds, Timeout: secDuration(f.timeout),
		LimitConcurrency: f.limitConcurrency, RootPath: f.rootPath, AccessLog: access, Logger: log,
		KeepAlive: secDuration(f.keepAlive), CertFile: f.certFile, KeyFile: f.keyFile, Factory: f.factory, HeaderTimeout: secDuration(f.headerTimeout),
		BodyTimeout: secDuration(f.bodyTimeout), NoServerHeader: f.noServerHeader, WSMax: f.wsMax,
		WSPingInterval: wsPing, WSPingTimeout: secDuration(f.wsPingTimeout), Tracebacks: tracebacks}, nil
}

func secDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// checkBind refuses a --bind that cannot be listened on, before the app is
// imported (a bare port such as 8004 is a common slip for :8004).
func checkBind(b string) error {
	if p, ok := strings.CutPrefix(b, "unix:"); ok {
		if p == "" {
			return fmt.Errorf("--bind %q: want unix:PATH", b)
		}
		return nil
	}
	_, port, err := net.SplitHostPort(b)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = errors.New("port out of range")
		}
	}
	if err != nil {
		return fmt.Errorf("--bind %q: want HOST:PORT (e.g. 127.0.0.1:8000 or 0.0.0.0:%s) or unix:PATH", b, strings.TrimPrefix(b, ":"))
	}
	return nil
}
