package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// attack16Source lists, from the source files of this package (and of
// package zk, mounted under /zk/), every route pattern registered on a
// mux (handle, Handle, HandleFunc with a literal pattern) and every form
// field a handler reads (PostFormValue, FormValue). A pattern that is not
// a literal fails the test, so that no route escapes the list.
func attack16Source(t *testing.T) (routes, fields []string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, "_test.go") })
	files = append(files, filepath.Join("..", "..", "vault", "zk", "server.go"))
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		zk := strings.Contains(f, "zk")
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.Ident:
				fn = f.Name
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			}
			lit, isLit := call.Args[0].(*ast.BasicLit)
			var s string
			if isLit && lit.Kind == token.STRING {
				s, _ = strconv.Unquote(lit.Value)
			}
			switch fn {
			case "handle", "Handle", "HandleFunc":
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && fn != "handle" {
					if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "mux" {
						if x, ok := sel.X.(*ast.SelectorExpr); !ok || x.Sel.Name != "mux" {
							return true // not a mux
						}
					}
				}
				if s == "" {
					if id, ok := call.Args[0].(*ast.Ident); ok && id.Name == "pattern" {
						return true // the handle helper itself
					}
					t.Fatalf("%s: a route registered with a pattern that is not a literal", fset.Position(call.Pos()))
				}
				if zk {
					method, path, _ := strings.Cut(s, " ")
					s = method + " /zk" + path
				}
				routes = append(routes, s)
			case "PostFormValue", "FormValue":
				if s != "" && !slices.Contains(fields, s) {
					fields = append(fields, s)
				}
			}
			return true
		})
	}
	return routes, fields
}

// attack16Path turns a route pattern into a method and a path to request.
func attack16Path(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "POST", pattern
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = strings.ReplaceAll(path, "{id}", "NOPE")
	path = strings.ReplaceAll(path, "{name}", "n1")
	if strings.HasSuffix(path, "/") && path != "/" {
		path += "x"
	}
	return method, path
}

// countingReader hands out n bytes of b repeated, counting what was read.
type countingReader struct {
	fill []byte
	n    int
	read int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		return 0, io.EOF
	}
	k := min(len(p), c.n-c.read)
	for i := range k {
		p[i] = c.fill[(c.read+i)%len(c.fill)]
	}
	c.read += k
	return k, nil
}

// TestAttack16EveryRouteHostileInput (oversized and malformed input at
// every endpoint): every route the source registers (listed from the
// code, not by hand: attack16Source) gets, signed out and from a session
// that is logged in, unlocked and fresh: a 1 MiB password and a 10 MiB
// body (as a form, and as JSON), every form field the handlers read set to
// invalid UTF-8, to NUL bytes, and to a secret marker, 100,000 form
// fields, a garbage and a 100 KiB session cookie, and a 64 KiB query
// (a plain go test sends each route eight of them; long mode all). No
// answer is a 5xx, no handler panics, no body is read past the 1 MiB
// limit (an answer of 413 for a form over it), and no answer shows the
// marker sent in a password or code field.
func TestAttack16EveryRouteHostileInput(t *testing.T) {
	e := newEnv(t, true)
	routes, fields := attack16Source(t)
	if len(routes) < 50 || !slices.Contains(routes, "POST /login") || !slices.Contains(routes, "PUT /zk/records/{name}") {
		t.Fatalf("the source lists %d routes: %q", len(routes), routes)
	}
	for _, f := range []string{"username", "password", "current", "new", "code", "recovery_key", "key"} {
		if !slices.Contains(fields, f) {
			t.Fatalf("the source lists form fields %q, without %q", fields, f)
		}
	}
	secret := map[string]bool{"password": true, "current": true, "new": true, "code": true, "recovery_code": true, "recovery_key": true, "key": true}
	const marker = "S3CR3T-MARKER-7f3a"

	e.signup(e.client(), "ada")
	addr := 0
	var session []*http.Cookie
	var loggedIn time.Time
	// login gives a fresh, unlocked session of ada's from a new address.
	login := func() {
		addr++
		r, _ := e.direct("POST", "/login", fmt.Sprintf("10.30.%d.%d", addr/250, addr%250), url.Values{"username": {"ada"}, "password": {password}}, nil)
		if r.Code != http.StatusSeeOther {
			t.Fatalf("login: %d", r.Code)
		}
		session, loggedIn = r.Result().Cookies(), e.clock.Now()
	}
	login()

	form := func(v string) url.Values {
		f := url.Values{}
		for _, k := range fields {
			f.Set(k, v)
		}
		return f
	}
	marked := url.Values{}
	for _, k := range fields {
		if secret[k] {
			marked.Set(k, marker+"-"+k)
		} else {
			marked.Set(k, "x")
		}
	}
	many := &strings.Builder{}
	for i := range 100_000 {
		fmt.Fprintf(many, "f%d=%d&", i, i)
	}
	big := url.Values{"username": {"ada"}, "password": {strings.Repeat("p", 1<<20)}}.Encode()
	type payload struct {
		name, ct, query string
		body            func() io.Reader
		size            int // 0: small
		cookie          *http.Cookie
	}
	payloads := []payload{
		{name: "1 MiB password", ct: "application/x-www-form-urlencoded", body: func() io.Reader { return strings.NewReader(big) }, size: len(big)},
		{name: "10 MiB form", ct: "application/x-www-form-urlencoded", size: 10 << 20},
		{name: "10 MiB JSON", ct: "application/json", size: 10 << 20},
		{name: "invalid UTF-8", ct: "application/x-www-form-urlencoded", body: func() io.Reader { return strings.NewReader(form("\xff\xfe\xc0\x80" + marker).Encode()) }},
		{name: "NUL bytes", ct: "application/x-www-form-urlencoded", body: func() io.Reader { return strings.NewReader(form("a\x00b\x00").Encode()) }},
		{name: "secret marker", ct: "application/x-www-form-urlencoded", body: func() io.Reader { return strings.NewReader(marked.Encode()) }},
		{name: "100k fields", ct: "application/x-www-form-urlencoded", body: func() io.Reader { return strings.NewReader(many.String()) }},
		{name: "deep JSON", ct: "application/json", body: func() io.Reader {
			return strings.NewReader(strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000))
		}},
		{name: "garbage session cookie", cookie: &http.Cookie{Name: "__Host-keyhold", Value: "garbage\x7f"}},
		{name: "100 KiB session cookie", cookie: &http.Cookie{Name: "__Host-keyhold", Value: strings.Repeat("A", 100<<10)}},
		{name: "100 KiB device cookie", cookie: &http.Cookie{Name: "__Host-keyhold-device", Value: strings.Repeat("A", 100<<10)}},
		{name: "64 KiB query", query: "?next=" + strings.Repeat("%2F", 1<<13) + "&token=" + strings.Repeat("t", 32<<10) + "&name=%ff%00"},
	}

	requests := 0
	u, _ := url.Parse(e.origin)
	host := u.Host
	spent := map[string]time.Duration{}
	// A plain go test sends every route a few payloads, signed in (past
	// the session's guards, to the handlers) and signed out; long mode
	// (KEYHOLD_LONG_TESTS=1) sends every payload both ways.
	short := func(names ...string) []payload {
		if testenv.Long() {
			return payloads
		}
		return slices.DeleteFunc(slices.Clone(payloads), func(p payload) bool { return !slices.Contains(names, p.name) })
	}
	signedOut := short("1 MiB password", "100 KiB session cookie")
	signedInPayloads := short("10 MiB form", "10 MiB JSON", "invalid UTF-8", "secret marker", "100k fields", "64 KiB query")
	for _, signedIn := range []bool{false, true} {
		ps := signedInPayloads
		if !signedIn {
			ps = signedOut
		}
		for _, route := range routes {
			method, path := attack16Path(route)
			for _, p := range ps {
				// Some of the limits refill, and the fake clock stays within an
				// hour of the real one (the passkey challenges' store checks
				// their expiry against it); a new login every 4 minutes keeps
				// the session fresh (5).
				e.clock.Advance(time.Second)
				if signedIn && e.clock.Now().Sub(loggedIn) > 4*time.Minute {
					login()
				}
				var body io.Reader = strings.NewReader("")
				var counter *countingReader
				switch {
				case p.size >= 10<<20:
					fill := []byte("a=b&")
					if p.ct == "application/json" {
						fill = []byte(`{"a":"`)
					}
					counter = &countingReader{fill: fill, n: p.size}
					body = counter
				case p.body != nil:
					body = p.body()
				}
				req := httptest.NewRequest(method, e.srv.URL+path+p.query, body)
				req.RemoteAddr = "10.31.0.1:40000"
				req.Host = host // the origin's, as the passkey endpoints want
				if p.ct != "" {
					req.Header.Set("Content-Type", p.ct)
				}
				if signedIn {
					for _, c := range session {
						if p.cookie == nil || c.Name != p.cookie.Name {
							req.AddCookie(c)
						}
					}
				}
				if p.cookie != nil {
					req.Header.Add("Cookie", p.cookie.Name+"="+p.cookie.Value)
				}
				rec := httptest.NewRecorder()
				start := time.Now()
				func() {
					defer func() {
						if v := recover(); v != nil {
							t.Errorf("%s %s, %s (signed in %v): panic: %v", method, path, p.name, signedIn, v)
						}
					}()
					e.srv.Config.Handler.ServeHTTP(rec, req)
				}()
				requests++
				spent[route] += time.Since(start)
				what := fmt.Sprintf("%s %s, %s (signed in %v)", method, path, p.name, signedIn)
				if rec.Code >= 500 {
					t.Errorf("%s: %d\n%.300s", what, rec.Code, rec.Body.String())
				}
				if counter != nil && counter.read > 1<<20+64<<10 {
					t.Errorf("%s: %d bytes of the body read", what, counter.read)
				}
				if p.size >= 1<<20 && p.ct == "application/x-www-form-urlencoded" && method == "POST" && !rawAPI(req) && rec.Code != http.StatusRequestEntityTooLarge {
					t.Errorf("%s: %d, want 413", what, rec.Code)
				}
				if strings.Contains(rec.Body.String(), marker) || strings.Contains(fmt.Sprint(rec.Header()), marker) {
					t.Errorf("%s: the answer shows a secret sent", what)
				}
				// Keep ada's session usable: a new one when this request
				// ended it (logout, delete) or left it locked.
				if signedIn && method != "GET" {
					for _, c := range rec.Result().Cookies() {
						for i, s := range session {
							if s.Name == c.Name && c.Value != "" {
								session[i] = c
							}
						}
					}
					check := httptest.NewRequest("GET", e.srv.URL+"/notes", nil)
					for _, c := range session {
						check.AddCookie(c)
					}
					cr := httptest.NewRecorder()
					e.srv.Config.Handler.ServeHTTP(cr, check)
					if cr.Code != http.StatusOK {
						if route == "POST /account/delete" && cr.Code == http.StatusSeeOther {
							t.Fatalf("%s deleted the account", what)
						}
						login()
					}
				}
			}
		}
	}
	t.Logf("%d routes, %d form fields, %d requests", len(routes), len(fields), requests)
	for r, d := range spent {
		if d > 200*time.Millisecond {
			t.Logf("%s: %v", r, d)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "webapp.error") || strings.Contains(logs, marker) {
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, "webapp.error") || strings.Contains(l, marker) {
				t.Errorf("log: %.300s", l)
			}
		}
	}
}
