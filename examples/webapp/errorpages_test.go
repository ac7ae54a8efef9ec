package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// answer is a response as the styled-error tests look at it.
type answer struct {
	code   int
	header http.Header
	body   string
}

func (e *testEnv) send(c *http.Client, method, path, contentType, body string, header http.Header) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// styledPage checks that a is the app's error page with status code and a
// message containing msg, with the security headers.
func styledPage(t *testing.T, what string, a answer, code int, msg string) {
	t.Helper()
	if a.code != code || a.header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(a.body, `href="/static/style.css"`) || !strings.Contains(a.body, `class="error-page"`) ||
		!strings.Contains(a.body, msg) {
		t.Errorf("%s: %d %q, want the styled page %d saying %q:\n%.600s", what, a.code, a.header.Get("Content-Type"), code, msg, a.body)
	}
	if a.header.Get("Content-Security-Policy") == "" || a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: security headers missing: %v", what, a.header)
	}
}

// TestStyledErrorPages (issue 15): what the cross-origin protection, the
// mux, the file server and the request's size limit would answer in plain
// text is the app's error page, with the same status and headers; bad
// form input gets a 4xx page that says what is wrong; a handler's own
// HTML answer passes as it is.
func TestStyledErrorPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")

	styledPage(t, "404", e.send(c, "GET", "/nope", "", "", nil), 404, "There is no page at this address")
	styledPage(t, "404 of a static file", e.send(c, "GET", "/static/nope.css", "", "", nil), 404, "There is no page at this address")
	if a := e.send(c, "HEAD", "/nope", "", "", nil); a.code != 404 || a.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("404 of a HEAD: %d %q", a.code, a.header.Get("Content-Type"))
	}

	a := e.send(c, "GET", "/logout", "", "", nil)
	styledPage(t, "405", a, 405, "cannot be used that way")
	if allow := a.header.Get("Allow"); !strings.Contains(allow, "POST") {
		t.Errorf("405 without its Allow header: %q", allow)
	}

	form := url.Values{"title": {"x"}, "body": {"y"}}.Encode()
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}}
	styledPage(t, "403 (Sec-Fetch-Site)", e.send(c, "POST", "/notes", "application/x-www-form-urlencoded", form, cross), 403, "did not come from this app")
	styledPage(t, "403 (Origin)", e.send(c, "POST", "/lock", "", "", http.Header{"Origin": {"https://evil.example"}}), 403, "did not come from this app")
	if p := e.get(c, "/notes"); p.code != 200 || strings.Contains(p.body, `<h2>x</h2>`) {
		t.Fatalf("the cross-origin note was added, or the session locked: %d", p.code)
	}

	big := url.Values{"title": {"big"}, "body": {strings.Repeat("x", 2<<20)}}.Encode()
	styledPage(t, "413", e.send(c, "POST", "/notes", "application/x-www-form-urlencoded", big, nil), 413, "too large")
	styledPage(t, "400 (body)", e.send(c, "POST", "/notes", "application/x-www-form-urlencoded", "title=%zz&body=1", nil), 400, "could not read")
	styledPage(t, "400 (query)", e.send(c, "POST", "/notes?x=%zz", "application/x-www-form-urlencoded", form, nil), 400, "could not read")
	styledPage(t, "400 (semicolon)", e.send(c, "POST", "/reauth?a=1;b=2", "application/x-www-form-urlencoded", "password=x", nil), 400, "could not read")
	styledPage(t, "400 of the login (logged out)", e.send(e.client(), "POST", "/login", "application/x-www-form-urlencoded", "username=%", nil), 400, "could not read")

	// The handler's own page for its own 4xx passes untouched, with its
	// own message.
	own := e.send(c, "POST", "/notes", "application/x-www-form-urlencoded", url.Values{"title": {"  "}}.Encode(), nil)
	if own.code != 400 || !strings.Contains(own.body, "needs a title") || strings.Contains(own.body, "could not read") {
		t.Errorf("the handler's own 400 page: %d\n%.600s", own.code, own.body)
	}
	// A form in another encoding is left to the handler.
	if a := e.send(c, "POST", "/notes", "multipart/form-data; boundary=x", "--x--", nil); a.code >= 500 {
		t.Errorf("multipart form: %d", a.code)
	}
	if strings.Contains(e.logs.String(), "webapp.error") {
		t.Errorf("bad input was logged as a server error:\n%s", e.logs)
	}
}

// TestStyledErrorsLeaveTheJSONAPIs: the passkey and zero-knowledge APIs'
// answers pass as they are, JSON or not, whatever their status.
func TestStyledErrorsLeaveTheJSONAPIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	for _, tc := range []struct {
		method, path, ct, body string
		header                 http.Header
	}{
		{"POST", "/passkey/login/finish", "application/json", "{not json", nil},
		{"POST", "/passkey/register/begin", "application/json", "{}", nil}, // not logged in: 401
		{"POST", "/passkey/login/finish", "application/x-www-form-urlencoded", "a=%zz", nil},
		{"POST", "/passkey/login/finish", "application/x-www-form-urlencoded", "a=" + strings.Repeat("x", 2<<20), nil},
		{"GET", "/zk/vault", "", "", nil},
	} {
		a := e.send(c, tc.method, tc.path, tc.ct, tc.body, tc.header)
		var v map[string]any
		if a.code < 400 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(a.body), &v) != nil {
			t.Errorf("%s %s: %d %q, want a JSON error:\n%.300s", tc.method, tc.path, a.code, a.header.Get("Content-Type"), a.body)
		}
	}
	// What stands in front of the APIs answers them in its own way, not
	// with the HTML page: their clients read the answer.
	for _, tc := range []struct{ method, path string }{{"GET", "/passkey/login/finish"}, {"DELETE", "/zk/vault"}} {
		a := e.send(c, tc.method, tc.path, "", "", nil)
		if a.code < 400 || strings.Contains(a.body, "<html") {
			t.Errorf("%s %s: %d %q, want no HTML page:\n%.300s", tc.method, tc.path, a.code, a.header.Get("Content-Type"), a.body)
		}
	}
	a := e.send(c, "POST", "/passkey/login/begin", "application/json", "{}", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	if a.code != 403 || strings.Contains(a.body, "<html") {
		t.Errorf("cross-origin API call: %d\n%.300s", a.code, a.body)
	}
}

// TestStyledWriter: the writer takes over plain-text answers of 400 and
// more only; others pass byte for byte, with their headers.
func TestStyledWriter(t *testing.T) {
	t.Parallel()
	h := (&app{}).styledErrors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/html404":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(404)
			io.WriteString(w, "<p>my own page</p>")
		case "/json400":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"x"}`)
		case "/plain200":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "fine")
		case "/plain500":
			w.Header().Set("Retry-After", "7")
			http.Error(w, "internal detail: db at 10.0.0.7 refused", http.StatusInternalServerError)
		case "/twice":
			http.Error(w, "first", http.StatusTooManyRequests)
			w.WriteHeader(200) // superfluous: ignored
			io.WriteString(w, "more")
		case "/flush":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		case "/nobody":
			w.WriteHeader(http.StatusTeapot)
		case "/odd":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(499)
		}
	}))
	run := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	for _, tc := range []struct {
		path, body string
		code       int
	}{{"/html404", "<p>my own page</p>", 404}, {"/json400", `{"error":"x"}`, 400}, {"/plain200", "fine", 200}, {"/flush", "ab", 200}, {"/nobody", "", 418}} {
		if rec := run(tc.path); rec.Code != tc.code || rec.Body.String() != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, rec.Code, rec.Body, tc.code, tc.body)
		}
	}
	rec := run("/plain500")
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "Something went wrong on our side") ||
		strings.Contains(rec.Body.String(), "10.0.0.7") || rec.Header().Get("Retry-After") != "7" ||
		rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("/plain500: %d %v\n%s", rec.Code, rec.Header(), rec.Body)
	}
	if rec := run("/odd"); rec.Code != 499 || !strings.Contains(rec.Body.String(), "This request could not be served. Please go back") {
		t.Errorf("/odd: %d\n%s", rec.Code, rec.Body)
	}
	rec = run("/twice")
	if rec.Code != 429 || !strings.Contains(rec.Body.String(), "Too many requests") || strings.Contains(rec.Body.String(), "more") {
		t.Errorf("/twice: %d\n%s", rec.Code, rec.Body)
	}
}

const (
	firefoxUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	iPhoneUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// TestRevokeOthers (issue 15): "Log out everywhere else" needs a recent
// password, ends every other session and keeps this one; the devices page
// lists this device first, then the latest login first.
func TestRevokeOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	var others []*http.Client
	for _, ua := range []string{firefoxUA, iPhoneUA} {
		e.clock.Advance(90 * time.Second)
		o := e.client()
		expect(t, "login", e.do(o, "POST", "/login", url.Values{"username": {"ada"}, "password": {password}}, http.Header{"User-Agent": {ua}}), 303, "/notes")
		others = append(others, o)
	}
	page := e.get(c, "/devices").body
	self, refs := deviceRefs(t, page)
	if self == "" || len(refs) != 2 || !strings.Contains(page, `action="/devices/revoke-others"`) {
		t.Fatalf("devices page: this device %q, others %q\n%s", self, refs, page)
	}
	// This device first, then the latest login (the iPhone), described
	// in short, the full string in the details.
	i, j, k := strings.Index(page, "(this device)"), strings.Index(page, "Safari on iPhone"), strings.Index(page, "Firefox on Windows")
	if i < 0 || j < i || k < j || !strings.Contains(page, "<code title=\""+iPhoneUA+"\">"+iPhoneUA+"</code>") {
		t.Errorf("devices out of order (%d %d %d) or without details:\n%s", i, j, k, page)
	}
	if !strings.Contains(page, "UTC</time>") {
		t.Errorf("times without their zone:\n%s", page)
	}
	// A request moves no row (the session package lists by last request).
	e.clock.Advance(90 * time.Second)
	e.get(others[0], "/notes")
	_, again := deviceRefs(t, e.get(c, "/devices").body)
	if strings.Join(again, " ") != strings.Join(refs, " ") {
		t.Errorf("rows moved after a request: %q, then %q", refs, again)
	}

	e.clock.Advance(6 * time.Minute)
	expect(t, "not fresh", e.post(c, "/devices/revoke-others", nil), 303, "/reauth")
	for _, o := range others {
		expect(t, "still logged in", e.get(o, "/notes"), 200, "")
	}
	expect(t, "step-up", e.post(c, "/reauth", url.Values{"password": {password}}), 303, "/devices")
	expect(t, "log out everywhere else", e.post(c, "/devices/revoke-others", nil), 303, "/devices?others=ended")
	for _, o := range others {
		expect(t, "logged out", e.get(o, "/notes"), 303, "/login?ended=1")
	}
	after := e.get(c, "/devices")
	self2, rest := deviceRefs(t, after.body)
	if after.code != 200 || self2 != self || len(rest) != 0 || strings.Contains(after.body, `action="/devices/revoke-others"`) {
		t.Errorf("devices after: %d, this device %q, others %q\n%s", after.code, self2, rest, after.body)
	}
	if p := e.get(c, "/devices?others=ended"); !strings.Contains(p.body, "Your other devices are logged out") {
		t.Errorf("no notice:\n%s", p.body)
	}
	expect(t, "this device still in", e.get(c, "/notes"), 200, "")
}
