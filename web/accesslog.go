package web

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// AccessFormat is an access log line in gunicorn's --access-logformat
// syntax: %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)s.
type AccessFormat struct {
	parts []accessPart
}

type accessPart struct {
	lit  string
	atom string // "" for a literal
	arg  string // the header name of {name}i and {name}o
}

// ParseAccessFormat compiles a gunicorn access log format. Atoms: h (client
// address), l (-), u (user, from basic auth), t (time), r (request line), m
// (method), U (path), q (query), H (protocol), s (status), B (body bytes), b
// (body bytes or -), f (referer), a (user agent), T (seconds), M
// (milliseconds), D (microseconds), L (seconds, decimal), p (process id),
// {name}i (a request header), {name}o (a response header).
func ParseAccessFormat(f string) (*AccessFormat, error) {
	af := &AccessFormat{}
	for f != "" {
		i := strings.Index(f, "%(")
		if i < 0 {
			af.parts = append(af.parts, accessPart{lit: f})
			break
		}
		if i > 0 {
			af.parts = append(af.parts, accessPart{lit: f[:i]})
		}
		end := strings.Index(f[i:], ")s")
		if end < 0 {
			return nil, fmt.Errorf("--access-logformat: %q has no closing )s", f[i:])
		}
		atom := f[i+2 : i+end]
		p := accessPart{atom: atom}
		if strings.HasPrefix(atom, "{") && (strings.HasSuffix(atom, "}i") || strings.HasSuffix(atom, "}o")) {
			p.atom, p.arg = atom[len(atom)-1:], atom[1:len(atom)-2]
		} else if len(atom) != 1 || !strings.Contains("hlutrmUqHsBbfaTMDLp", atom) {
			return nil, fmt.Errorf("--access-logformat: unknown atom %%(%s)s", atom)
		}
		af.parts = append(af.parts, p)
		f = f[i+end+2:]
	}
	return af, nil
}

// readsResponseHeaders: the format has a {name}o atom.
func (af *AccessFormat) readsResponseHeaders() bool {
	for _, p := range af.parts {
		if p.atom == "o" {
			return true
		}
	}
	return false
}

func (af *AccessFormat) write(w io.Writer, req *request, t0 time.Time) {
	r := req.r
	d := time.Since(t0)
	var b bytes.Buffer
	for _, p := range af.parts {
		if p.atom == "" {
			b.WriteString(p.lit)
			continue
		}
		b.WriteString(af.atom(p, req, r.RemoteAddr, t0, d))
	}
	b.WriteByte('\n')
	w.Write(b.Bytes())
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (af *AccessFormat) atom(p accessPart, req *request, remote string, t0 time.Time, d time.Duration) string {
	r := req.r
	switch p.atom {
	case "h":
		h, _, err := net.SplitHostPort(remote)
		if err != nil {
			return dash(remote)
		}
		return h
	case "l":
		return "-"
	case "u":
		u, _, _ := r.BasicAuth()
		return dash(u)
	case "t":
		return "[" + t0.Format("02/Jan/2006:15:04:05 -0700") + "]"
	case "r":
		return r.Method + " " + r.URL.RequestURI() + " " + r.Proto
	case "m":
		return r.Method
	case "U":
		return r.URL.Path
	case "q":
		return r.URL.RawQuery
	case "H":
		return r.Proto
	case "s":
		return strconv.Itoa(req.status)
	case "B":
		return strconv.FormatInt(req.written, 10)
	case "b":
		if req.written == 0 {
			return "-"
		}
		return strconv.FormatInt(req.written, 10)
	case "f":
		return dash(r.Referer())
	case "a":
		return dash(r.UserAgent())
	case "T":
		return strconv.Itoa(int(d.Seconds()))
	case "M":
		return strconv.FormatInt(d.Milliseconds(), 10)
	case "D":
		return strconv.FormatInt(d.Microseconds(), 10)
	case "L":
		return strconv.FormatFloat(d.Seconds(), 'f', 6, 64)
	case "p":
		return "<" + strconv.Itoa(os.Getpid()) + ">"
	case "i":
		return dash(r.Header.Get(p.arg))
	case "o":
		return dash(req.w.Header().Get(p.arg))
	}
	return "-"
}
