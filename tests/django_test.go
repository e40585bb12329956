package tests

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// djangoProject makes a project with Debian's Django exactly as
// `django-admin startproject` writes it, its database migrated and a
// superuser admin (password pw) created with manage.py.
func djangoProject(t *testing.T) string {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import django").Run(); err != nil {
		t.Skip("python3-django is not installed (make deps)")
	}
	dir := t.TempDir()
	run := func(env []string, args ...string) {
		t.Helper()
		c := exec.Command(debianPython, args...)
		c.Dir, c.Env = dir, append(os.Environ(), env...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("python3 %v: %v\n%s", args, err, out)
		}
	}
	run(nil, "-m", "django", "startproject", "site9", ".")
	run(nil, "manage.py", "migrate", "-v", "0")
	run([]string{"DJANGO_SUPERUSER_PASSWORD=pw-web9"}, "manage.py", "createsuperuser", "--noinput", "--username", "admin9", "--email", "a@example.com")
	return dir
}

var csrfRe = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// Django's admin, unchanged, under WSGI and ASGI: log in through the CSRF
// form, follow the redirect, list the users.
func TestDjangoAdmin(t *testing.T) {
	dir := djangoProject(t)
	for _, tc := range []struct{ name, app, class string }{
		{"wsgi", "site9.wsgi:application", "wsgi"},
		{"asgi", "site9.asgi:application", "asgi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := serveApp(t, dir, tc.app, "-k", tc.class, "-b", "127.0.0.1:0", "-t", "20")
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
			fetchPage := func(resp *http.Response, err error) (int, string) {
				t.Helper()
				if err != nil {
					t.Fatalf("%v\n%s", err, p.logs())
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			t0 := time.Now()
			code, page := fetchPage(c.Get(p.base + "/admin/login/?next=/admin/"))
			m := csrfRe.FindStringSubmatch(page)
			if code != 200 || m == nil {
				t.Fatalf("login page: %d\n%.500s", code, page)
			}
			t.Logf("login page in %v", time.Since(t0))
			form := url.Values{"csrfmiddlewaretoken": {m[1]}, "username": {"admin9"}, "password": {"pw-web9"}, "next": {"/admin/"}}
			req, _ := http.NewRequest("POST", p.base+"/admin/login/?next=/admin/", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Referer", p.base+"/admin/login/")
			code, page = fetchPage(c.Do(req)) // follows the 302 to /admin/
			if code != 200 || !strings.Contains(page, "Site administration") {
				t.Fatalf("after logging in: %d\n%.800s", code, page)
			}
			code, page = fetchPage(c.Get(p.base + "/admin/auth/user/"))
			if code != 200 || !strings.Contains(page, "admin9") || !strings.Contains(page, "a@example.com") {
				t.Fatalf("user list: %d\n%.800s", code, page)
			}
		})
	}

}

// debianPython is the interpreter hornbeam embeds (Debian's), whose
// packages (python3-django) the tests use.
const debianPython = "/usr/bin/python3"
