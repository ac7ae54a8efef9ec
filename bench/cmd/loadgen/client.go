package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Client addresses. The app limits logins (5 per 15 minutes) and sign-ups
// (3 per hour) per client address, and counts lockout failures per
// address: every simulated client connects from an address of its own in
// 127.0.0.0/8 (on Linux the whole block reaches the loopback interface),
// so that the app sees as many clients as the run simulates. Blocks:
// 127.3 for setting up users, 127.4 for the legitimate users' logins
// during a storm, 127.16 and up for the flood.
type addrBlock struct {
	first byte // second octet of the first /16 of the block
	next  atomic.Uint64
}

// addr returns the block's next unused address (never .0 or .255 in the
// last octet).
func (b *addrBlock) addr() netip.Addr {
	n := b.next.Add(1) - 1
	last := byte(n%250) + 1
	third := byte(n / 250 % 256)
	second := b.first + byte(n/250/256)
	return netip.AddrFrom4([4]byte{127, second, third, last})
}

// newTransport returns a transport whose connections come from src
// (zero: the kernel's choice) and keep up to conns idle connections.
func newTransport(src netip.Addr, conns int) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true, // the app compresses nothing; keep the bytes comparable
	}
}

// newClient returns a client that keeps cookies, follows no redirect (the
// caller reads Location) and gives up on a request after timeout.
func newClient(t http.RoundTripper, timeout time.Duration) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Transport:     t,
		Jar:           jar,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// answer is what a request got: the status, the redirect's target, the
// body and the time it took.
type answer struct {
	status   int
	location string
	body     []byte
	took     time.Duration
	busy     bool // the app's page for a full KDF queue (503, Retry-After, "busy")
}

// do sends a GET (form nil) or a POST of form to base+path.
func do(ctx context.Context, c *http.Client, base, path string, form url.Values) (answer, error) {
	method, body := http.MethodGet, io.Reader(nil)
	if form != nil {
		method, body = http.MethodPost, strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return answer{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return answer{took: time.Since(start)}, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	a := answer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: b, took: time.Since(start)}
	if err != nil {
		return a, err
	}
	a.busy = a.status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" &&
		strings.Contains(string(b), "We are busy right now")
	return a, nil
}

// user is an account of the run.
type user struct {
	name, password string
	titles         []string // its notes' titles, as added
}

// newUser returns an account with a random name (prefix and letters) and
// a random password that the app's policy accepts (25 characters:
// random upper-case letters and digits around a space).
func newUser(prefix string) user {
	return user{name: prefix + strings.ToLower(rand.Text()[:10]), password: rand.Text()[:12] + " " + rand.Text()[:12]}
}

// expect checks that a got the status (and, for a redirect, the target).
func expect(a answer, what string, status int, location string) error {
	if a.status != status || location != "" && a.location != location {
		msg := string(a.body)
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return fmt.Errorf("%s: got %d (Location %q), want %d %q: %s", what, a.status, a.location, status, location, msg)
	}
	return nil
}

// signUp creates u through the forms: the sign-up page and its form, the
// recovery keys page it leads to, then n notes added through the notes
// form. The client is left logged in.
func signUp(ctx context.Context, c *http.Client, base string, u *user, notes int) error {
	steps := []struct {
		what, path string
		form       url.Values
		status     int
		location   string
	}{
		{"GET /signup", "/signup", nil, 200, ""},
		{"POST /signup", "/signup", url.Values{"username": {u.name}, "password": {u.password}}, 303, "/recovery-keys"},
		{"GET /recovery-keys", "/recovery-keys", nil, 200, ""},
	}
	for _, s := range steps {
		a, err := do(ctx, c, base, s.path, s.form)
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		if err := expect(a, s.what, s.status, s.location); err != nil {
			return err
		}
	}
	for i := range notes {
		title := fmt.Sprintf("note %d of %s %s", i+1, u.name, strings.ToLower(rand.Text()[:8]))
		body := strings.Repeat("A sealed line of text for the load generator. ", 4)
		a, err := do(ctx, c, base, "/notes", url.Values{"title": {title}, "body": {body}})
		if err != nil {
			return fmt.Errorf("POST /notes: %w", err)
		}
		if err := expect(a, "POST /notes", 303, "/notes"); err != nil {
			return err
		}
		u.titles = append(u.titles, title)
	}
	return nil
}

// logout ends the client's session.
func logout(ctx context.Context, c *http.Client, base string) error {
	a, err := do(ctx, c, base, "/logout", url.Values{})
	if err != nil {
		return fmt.Errorf("POST /logout: %w", err)
	}
	return expect(a, "POST /logout", 303, "")
}

// logIn logs u in through the login page and form, which also unlocks the
// vault (the app's login sends an unlocked session to /notes).
func logIn(ctx context.Context, c *http.Client, base string, u user) error {
	a, err := do(ctx, c, base, "/login", nil)
	if err != nil {
		return fmt.Errorf("GET /login: %w", err)
	}
	if err := expect(a, "GET /login", 200, ""); err != nil {
		return err
	}
	if a, err = do(ctx, c, base, "/login", url.Values{"username": {u.name}, "password": {u.password}}); err != nil {
		return fmt.Errorf("POST /login: %w", err)
	}
	return expect(a, "POST /login "+u.name, 303, "/notes")
}

// checkNotes reads the notes page and checks that it shows every title of
// u's notes (opened by the server from their sealed form). It returns the
// response, for the bare server to copy.
func checkNotes(ctx context.Context, c *http.Client, base string, u user) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/notes", nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("GET /notes: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("GET /notes: %w", err)
	}
	if resp.StatusCode != 200 {
		return nil, nil, fmt.Errorf("GET /notes: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, t := range u.titles {
		if !strings.Contains(string(b), t) {
			return nil, nil, fmt.Errorf("GET /notes of %s: the note %q is not on the page", u.name, t)
		}
	}
	return resp, b, nil
}
