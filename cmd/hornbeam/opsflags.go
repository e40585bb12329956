package main

import (
	"os"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam/web"
)

// opsFlags are start's operator conventions beside gunicorn's and uvicorn's
// flags: --pid, --access-logformat, --proxy-headers, --forwarded-allow-ips.
type opsFlags struct {
	pidFile           string
	accessLogFormat   string
	proxyHeaders      bool
	forwardedAllowIPs string
}

func (f *opsFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.pidFile, "pid", os.Getenv("HORNBEAM_PID"), "write the node's process id to this file (removed on exit)")
	fs.StringVar(&f.accessLogFormat, "access-logformat", os.Getenv("HORNBEAM_ACCESS_LOGFORMAT"),
		`access log line in gunicorn's syntax, e.g. '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)s' (default: common log format and seconds)`)
	fs.BoolVar(&f.proxyHeaders, "proxy-headers", envStr("HORNBEAM_PROXY_HEADERS", "true") != "false",
		"take the client address and scheme from X-Forwarded-For and X-Forwarded-Proto, from --forwarded-allow-ips peers only (as uvicorn; --proxy-headers=false to ignore them)")
	fs.StringVar(&f.forwardedAllowIPs, "forwarded-allow-ips", envStr("FORWARDED_ALLOW_IPS", "127.0.0.1"),
		"comma-separated IPs or CIDR ranges of trusted proxies, or '*' (env FORWARDED_ALLOW_IPS)")
}

// applyWeb sets the web server's proxy and access log settings.
func (f *opsFlags) applyWeb(c *web.Config) error {
	if f.proxyHeaders {
		t, err := web.ParseTrusted(f.forwardedAllowIPs)
		if err != nil {
			return err
		}
		c.ForwardedAllowIPs = t
	}
	if f.accessLogFormat != "" {
		af, err := web.ParseAccessFormat(f.accessLogFormat)
		if err != nil {
			return err
		}
		c.AccessFormat = af
	}
	return nil
}

// addJoinTimeout adds --join-timeout: how long a node keeps trying its --join
// addresses (the cluster layer retries each every second) before it gives
// up, so nodes may start in any order. A CLI tool gives up sooner: its
// cluster is expected to be there.
func addJoinTimeout(fs *pflag.FlagSet, v *float64, tool bool) {
	def := envFloat("HORNBEAM_JOIN_TIMEOUT", 30)
	if tool {
		def = 5
	}
	fs.Float64Var(v, "join-timeout", def, "seconds to keep trying the --join addresses before giving up")
}
