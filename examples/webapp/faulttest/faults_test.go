package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// The campaign's sizes (long mode only; see TestServiceFaults).
const (
	numUsers = 4
	// outage is how long PostgreSQL or Redis stays down.
	outage = 3 * time.Second
	// recoveryBound is how long after a server is back every user must be
	// served again (a read or a write that succeeds).
	recoveryBound = 20 * time.Second
	// reloginBound is the same after Redis lost the sessions: every user
	// logs in again meanwhile, two Argon2id runs of 64 MiB each (the
	// password, the vault), which the app's KDF gate runs two at a time
	// on two cores.
	reloginBound = 60 * time.Second
	// pause is each client's wait between two requests.
	pause = 50 * time.Millisecond
)

// TestServiceFaults runs the web app on a PostgreSQL and a Redis of the
// test's own while users read and write their notes, and fails them one
// after the other:
//
//  1. PostgreSQL restarted (pg_ctl restart -m fast);
//  2. PostgreSQL crashed (pg_ctl stop -m immediate), down for [outage],
//     started again (recovery from its WAL);
//  3. Redis stopped (SHUTDOWN NOSAVE), down for [outage], started again
//     with its append-only file: it keeps every write it acknowledged
//     (appendfsync always), so sessions survive, and so do revocations;
//  4. Redis stopped (SIGTERM), its data deleted, started again empty: the
//     sessions are gone, and every user must log in again, unlock and
//     find every note.
//
// Redis runs with an append-only file for step 3 on purpose: a Redis that
// keeps its data is where a revoked session could come back (from a file
// older than the revocation), which is what the revoked clients check
// right after the restart. Step 4 is the other configuration, --save ""
// --appendonly no, or a lost disk: everyone is logged out, a clear and
// safe failure.
//
// Throughout, it checks every answer: during an outage, a 5xx error page
// that names no secret and no internal detail (never a hang: each request
// must be answered); after it, every user served again within
// [recoveryBound] ([reloginBound] when they must log in again), without
// restarting the app; no user ever shown another user's name or notes
// (each note's body names its owner); every read
// shows every note acknowledged before it was sent, and only notes the
// user wrote (the [Ledger]); sessions revoked through the app ("Log out",
// "Log out everywhere else", a logout during an outage that the app
// acknowledged) refused at every request, right after each restart too,
// and the notes they try to write never stored. At the end every user
// logs in, locks, unlocks with a recovery key and with the password, and
// reads every acknowledged note; the app stops cleanly on SIGTERM; its
// log holds no panic and no secret.
func TestServiceFaults(t *testing.T) {
	if !testenv.Long() {
		t.Skip("runs in long mode (" + testenv.LongEnv + "=1): it builds the web app and starts a PostgreSQL and a Redis of its own, about a minute")
	}
	pg := startPostgres(t)
	rd := startRedis(t)
	app := startWebapp(t, buildWebapp(t), pg.DSN(), rd.URL())
	r := newRun(t, app, pg, rd)
	t.Logf("PostgreSQL on 127.0.0.1:%d (%s), Redis on 127.0.0.1:%d, the app on %s", pg.port, pg.bin, rd.port, app.base)

	r.signUpAll()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, u := range r.users {
		wg.Go(func() { r.activeLoop(ctx, u) })
		wg.Go(func() { r.revokedLoop(ctx, u) })
	}
	stopLoad := func() { cancel(); wg.Wait() }
	defer stopLoad()

	r.setPhase("steady")
	r.sleep(3 * time.Second)

	// 1. PostgreSQL restarted.
	r.setPhase("pg restart -m fast")
	r.goingDown(&r.pgDown)
	start := time.Now()
	if err := pg.restart("fast"); err != nil {
		t.Fatalf("%v\n%s", err, pg.log())
	}
	r.pgDown.Store(false)
	r.back("pg restart -m fast", start, recoveryBound)
	r.sleep(2 * time.Second)

	// 2. PostgreSQL crashed, down for a while. A logout meanwhile needs
	// only Redis: acknowledged, it must hold.
	extra := r.loginAll("logout during the PostgreSQL outage")
	r.setPhase("pg down (stop -m immediate)")
	r.goingDown(&r.pgDown)
	start = time.Now()
	if err := pg.stop("immediate"); err != nil {
		t.Fatalf("%v\n%s", err, pg.log())
	}
	r.logoutAll(extra, "PostgreSQL down")
	r.sleep(outage)
	if err := pg.start(); err != nil {
		t.Fatalf("%v\n%s", err, pg.log())
	}
	r.pgDown.Store(false)
	r.expectDownErrors("PostgreSQL down")
	r.back("pg stop -m immediate, start", start, recoveryBound)
	r.sleep(2 * time.Second)

	// 3. Redis stopped, started again with its data. A logout meanwhile
	// cannot be done: if the app says it was, it must hold.
	extra = r.loginAll("logout during the Redis outage")
	r.setPhase("redis down (shutdown nosave)")
	r.goingDown(&r.redisDown)
	start = time.Now()
	if err := rd.stop(true); err != nil {
		t.Fatalf("stop Redis: %v\n%s", err, tail(rd.log.String(), 2000))
	}
	pending := r.logoutAll(extra, "Redis down")
	r.sleep(outage)
	if err := rd.start(""); err != nil {
		t.Fatal(err)
	}
	r.redisDown.Store(false)
	r.expectDownErrors("Redis down")
	r.back("redis shutdown nosave, start with its data", start, recoveryBound)
	r.logoutLater(pending)
	r.sleep(2 * time.Second)

	// 4. Redis stopped, its data lost: every session ends.
	r.setPhase("redis down, data lost")
	r.sessionsMayEnd.Store(true)
	r.goingDown(&r.redisDown)
	start = time.Now()
	if err := rd.stop(false); err != nil {
		t.Fatalf("stop Redis: %v\n%s", err, tail(rd.log.String(), 2000))
	}
	if err := rd.wipe(); err != nil {
		t.Fatal(err)
	}
	r.sleep(outage)
	if err := rd.start(""); err != nil {
		t.Fatal(err)
	}
	r.redisDown.Store(false)
	r.expectDownErrors("Redis down, data lost")
	r.back("redis SIGTERM, start empty", start, reloginBound)
	r.sleep(3 * time.Second)
	r.setPhase("end")
	stopLoad()

	for _, u := range r.users {
		if u.relogins.Load() == 0 {
			r.fail("%s never logged in again after Redis lost the sessions: the test did not test that", u.name)
		}
	}
	r.finalCheck()
	if err := app.stop(); err != nil {
		t.Errorf("the web app did not exit cleanly on SIGTERM: %v", err)
	}
	r.checkLog()
	r.report()
}

// A user of the app, and the clients acting as them.
type user struct {
	idx            int
	name, password string
	keys           []string // the recovery keys shown at sign-up
	active         *browser // the session reading and writing notes
	seq            int      // the last note number used (the active loop's)
	ipSeq          atomic.Int32

	mu      sync.Mutex
	revoked []*browser // sessions revoked through the app, their cookies kept

	lastOK   atomic.Int64 // when the last request that succeeded began (Unix ns)
	relogins atomic.Int32
}

// nextIP returns a client address of the user's own, new at each call:
// the app limits logins per address (5 in 15 minutes), as it should, and
// this test logs in more often than a person would.
func (u *user) nextIP() string {
	n := u.ipSeq.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", 64+u.idx, n/250, 1+n%250)
}

func (u *user) revokedList() []*browser {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.revoked)
}

func (u *user) addRevoked(b *browser) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.revoked = append(u.revoked, b)
}

// A browser is one client: a cookie jar (or, for a revoked session, the
// cookies it had, sent as they were at every request), and an address.
type browser struct {
	u      *user
	hc     *http.Client
	jar    http.CookieJar
	cookie string // the Cookie header of a revoked session
	ip     string
	what   string // how it was revoked, for messages
}

// An answer is the app's answer to a request.
type answer struct {
	code     int
	location string
	body     string
	err      error // no answer
	start    time.Time
	phase    string
}

func (a answer) loginRedirect() bool {
	return a.code == http.StatusSeeOther && strings.HasPrefix(a.location, "/login")
}

func (a answer) String() string {
	if a.err != nil {
		return fmt.Sprintf("no answer (%v) [%s]", a.err, a.phase)
	}
	return fmt.Sprintf("%d %q [%s]: %s", a.code, a.location, a.phase, tail(a.body, 300))
}

// phaseStats counts answers by phase.
type phaseStats struct {
	ok, serverErr, unavailable, noAnswer, loginRedirect int // unavailable: the 503s among the 5xx
}

// run is the campaign's shared state.
type run struct {
	t      *testing.T
	app    *webapp
	pg     *pgServer
	rd     *redisServer
	ledger *Ledger
	users  []*user
	tr     *http.Transport

	pageSecrets []string // never in a page: the servers' passwords, their URLs, the users' passwords
	internals   []string // never in a page: what an error message of a driver would show

	phase          atomic.Pointer[string]
	pgDown         atomic.Bool
	redisDown      atomic.Bool
	downErrors     atomic.Int64 // 5xx answers to requests sent while a server was down
	sessionsMayEnd atomic.Bool  // Redis lost its data

	mu         sync.Mutex
	stats      map[string]*phaseStats
	phases     []string
	recoveries []string
	failures   atomic.Int64
}

func newRun(t *testing.T, app *webapp, pg *pgServer, rd *redisServer) *run {
	r := &run{t: t, app: app, pg: pg, rd: rd, ledger: NewLedger(), stats: map[string]*phaseStats{},
		tr: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true}}
	t.Cleanup(r.tr.CloseIdleConnections)
	r.pageSecrets = []string{pg.password, rd.password, pg.DSN(), rd.URL()}
	r.internals = []string{"SQLSTATE", "dial tcp", "connection refused", "pgx", "pgconn", "redis:", "goroutine ", "panic",
		fmt.Sprintf(":%d", pg.port), fmt.Sprintf(":%d", rd.port), "postgres://", "redis://", "runtime error"}
	for i := range numUsers {
		u := &user{idx: i, name: fmt.Sprintf("ft%d%s", i, secret()[:10]), password: "fault " + secret()}
		r.users = append(r.users, u)
		r.pageSecrets = append(r.pageSecrets, u.password)
	}
	r.setPhase("sign-up")
	return r
}

// fail records a failure; the first 40 are reported one by one.
func (r *run) fail(format string, args ...any) {
	r.t.Helper()
	if n := r.failures.Add(1); n <= 40 {
		r.t.Errorf(format, args...)
	}
}

func (r *run) setPhase(name string) {
	r.phase.Store(&name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stats[name] == nil {
		r.stats[name] = &phaseStats{}
		r.phases = append(r.phases, name)
	}
}

func (r *run) count(phase string, f func(*phaseStats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.stats[phase])
}

// sleep waits d, failing the test at once if the app exits meanwhile.
func (r *run) sleep(d time.Duration) {
	r.t.Helper()
	select {
	case <-time.After(d):
	case <-r.app.done:
		r.t.Fatalf("the web app exited: %v\n%s", r.app.err, tail(r.app.stderr.String(), 4000))
	}
}

func (r *run) newBrowser(u *user) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return &browser{u: u, jar: jar, ip: u.nextIP(), hc: &http.Client{Transport: r.tr, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// freeze returns a client that sends b's cookies as they are now at every
// request, whatever the app answers (a revoked session's cookie is
// cleared by the app's first refusal; an attacker keeps it).
func (r *run) freeze(b *browser, what string) *browser {
	u, _ := url.Parse(r.app.base)
	var parts []string
	for _, c := range b.jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	if len(parts) == 0 {
		r.t.Fatalf("%s: no cookie to keep", what)
	}
	return &browser{u: b.u, cookie: strings.Join(parts, "; "), ip: b.ip, what: what, hc: &http.Client{Transport: r.tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request as u from b and checks what every answer must be: no
// other user's name or notes, no secret, no internal detail; an error
// page for a 5xx.
func (r *run) do(ctx context.Context, u *user, b *browser, method, path string, form url.Values) answer {
	a := answer{start: time.Now(), phase: *r.phase.Load()}
	down := r.pgDown.Load() || r.redisDown.Load()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, r.app.base+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("X-Forwarded-For", b.ip)
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	resp, err := b.hc.Do(req)
	if err == nil {
		var raw []byte
		raw, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		a.code, a.location, a.body = resp.StatusCode, resp.Header.Get("Location"), string(raw)
	}
	if err != nil {
		a.err = err
		if ctx.Err() == nil { // not the test's own cancellation at the end
			r.count(a.phase, func(s *phaseStats) { s.noAnswer++ })
			r.fail("%s %s %s: %v", u.name, method, path, a)
		}
		return a
	}
	where := fmt.Sprintf("%s %s %s (%s)", u.name, method, path, b.what)
	for _, o := range r.users {
		if o != u && strings.Contains(a.body, o.name) {
			r.fail("%s: the answer names another user, %s: %v", where, o.name, a)
		}
	}
	for _, m := range ownerMark.FindAllStringSubmatch(a.body, -1) {
		if m[1] != u.name || b.cookie != "" {
			r.fail("%s: the answer shows a note of %s: %v", where, m[1], a)
		}
	}
	for _, s := range r.pageSecrets {
		if strings.Contains(a.body, s) {
			r.fail("%s: the answer holds a secret (a password or a server's URL): %v", where, a)
		}
	}
	for _, s := range r.internals {
		// Not in a 200 page: the notes' random text may hold "pgx".
		if a.code != http.StatusOK && strings.Contains(a.body, s) {
			r.fail("%s: the answer shows an internal detail %q: %v", where, s, a)
		}
	}
	switch {
	case a.code >= 500:
		if !strings.Contains(a.body, `class="error-page"`) {
			r.fail("%s: a %d that is not the app's error page: %v", where, a.code, a)
		}
		r.count(a.phase, func(s *phaseStats) {
			s.serverErr++
			if a.code == http.StatusServiceUnavailable {
				s.unavailable++
			}
		})
		if down {
			r.downErrors.Add(1)
			if a.code != http.StatusServiceUnavailable {
				r.fail("%s: a %d while a server was down, want 503 (unavailable, Retry-After): %v", where, a.code, a)
			}
		}
	case a.loginRedirect():
		r.count(a.phase, func(s *phaseStats) { s.loginRedirect++ })
	default:
		r.count(a.phase, func(s *phaseStats) { s.ok++ })
	}
	return a
}

var (
	digits      = regexp.MustCompile(`[0-9]+`)
	ownerMark   = regexp.MustCompile(`owner=([a-z0-9]+)`)
	recoveryKey = regexp.MustCompile(`[0-9A-Z]{4}(-[0-9A-Z]{4}){7}`)
)

// expect checks a request of the set-up or the final check, where no
// server is down: the status and the redirect.
func (r *run) expect(what string, a answer, code int, location string) {
	r.t.Helper()
	if a.err != nil || a.code != code || a.location != location {
		r.t.Fatalf("%s: got %v, want %d %q\n%s", what, a, code, location, tail(r.app.stderr.String(), 3000))
	}
}

// checkNotes checks a 200 notes page of u's: u's name in the header, and
// the notes against the ledger (want: acknowledged before the request).
func (r *run) checkNotes(u *user, a answer, want []string) {
	r.t.Helper()
	notes, err := ParseNotes(a.body)
	if err == nil && !strings.Contains(a.body, "<span>"+u.name+"</span>") {
		err = fmt.Errorf("the page does not name its user %s", u.name)
	}
	if err == nil {
		err = r.ledger.Check(u.name, notes, want)
	}
	if err != nil {
		r.fail("%s GET /notes [%s]: %v", u.name, a.phase, err)
	}
}

// signUpAll signs every user up (their first session, kept as the active
// one), writes two notes each, then opens two more sessions per user and
// revokes them through the app: one logs out, the other is logged out
// from the active session ("Log out everywhere else").
func (r *run) signUpAll() {
	ctx := r.t.Context()
	for _, u := range r.users {
		a := r.newBrowser(u)
		a.what = "active"
		u.active = a
		r.expect("sign-up "+u.name, r.do(ctx, u, a, "POST", "/signup", url.Values{"username": {u.name}, "password": {u.password}}), 303, "/recovery-keys")
		keys := r.do(ctx, u, a, "GET", "/recovery-keys", nil)
		r.expect("recovery keys", keys, 200, "")
		u.keys = recoveryKey.FindAllString(keys.body, -1)
		if len(u.keys) != 2 {
			r.t.Fatalf("sign-up showed %d recovery keys, want 2: %s", len(u.keys), keys.body)
		}
		for range 2 {
			if !r.writeNote(ctx, u) {
				r.t.Fatalf("%s: a note written with every server up was not acknowledged", u.name)
			}
		}
		b, c := r.newBrowser(u), r.newBrowser(u)
		r.login(ctx, u, b, "second session")
		r.login(ctx, u, c, "third session")
		want := r.ledger.Acked(u.name)
		got := r.do(ctx, u, c, "GET", "/notes", nil)
		r.expect("third session's notes", got, 200, "")
		r.checkNotes(u, got, want)
		frozenC := r.freeze(c, "logged out")
		r.expect("log out", r.do(ctx, u, c, "POST", "/logout", url.Values{}), 303, "/")
		frozenB := r.freeze(b, "logged out everywhere else")
		r.expect("log out everywhere else", r.do(ctx, u, a, "POST", "/devices/revoke-others", url.Values{}), 303, "/devices?others=ended")
		for _, s := range []*browser{frozenC, frozenB} {
			u.addRevoked(s)
			r.probeUntilRefused(ctx, u, s)
		}
		u.lastOK.Store(time.Now().UnixNano())
	}
}

// login logs b in as u (a new client address each time), or fails the
// test.
func (r *run) login(ctx context.Context, u *user, b *browser, what string) {
	r.t.Helper()
	b.ip = u.nextIP()
	b.what = what
	r.expect(u.name+": log in ("+what+")", r.do(ctx, u, b, "POST", "/login", url.Values{"username": {u.name}, "password": {u.password}}), 303, "/notes")
}

// loginAll opens one more session per user (before an outage).
func (r *run) loginAll(what string) []*browser {
	var out []*browser
	for _, u := range r.users {
		b := r.newBrowser(u)
		r.login(r.t.Context(), u, b, what)
		out = append(out, b)
	}
	return out
}

// logoutAll logs out each user's session in sessions during an outage.
// A logout the app acknowledges (303 to /) must hold: the session joins
// the revoked ones at once. It returns those it refused (a 5xx: the user
// knows the logout did not happen), to log out once the server is back.
func (r *run) logoutAll(sessions []*browser, during string) (pending []*browser) {
	for i, u := range r.users {
		b := sessions[i]
		frozen := r.freeze(b, "logged out while "+during)
		a := r.do(r.t.Context(), u, b, "POST", "/logout", url.Values{})
		switch {
		case a.code == 303 && a.location == "/":
			u.addRevoked(frozen)
		case a.code >= 500:
			pending = append(pending, b)
		default:
			r.fail("%s: log out while %s: %v", u.name, during, a)
		}
	}
	r.t.Logf("logouts while %s: %d acknowledged, %d refused with an error page", during, len(sessions)-len(pending), len(pending))
	return pending
}

// logoutLater logs out the sessions whose logout an outage refused: the
// session must still be there (nothing was said to have ended it), and
// the logout must work now.
func (r *run) logoutLater(pending []*browser) {
	for _, b := range pending {
		u := b.u
		frozen := r.freeze(b, "logged out after the outage")
		deadline := time.Now().Add(recoveryBound)
		for {
			a := r.do(r.t.Context(), u, b, "POST", "/logout", url.Values{})
			if a.code == 303 && a.location == "/" {
				u.addRevoked(frozen)
				break
			}
			if a.code < 500 || time.Now().After(deadline) {
				r.fail("%s: log out after the outage: %v", u.name, a)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// writeNote writes u's next note from the active session and reports
// whether the app acknowledged it.
func (r *run) writeNote(ctx context.Context, u *user) bool {
	u.seq++
	title := fmt.Sprintf("%s-n%04d", u.name, u.seq)
	body := fmt.Sprintf("owner=%s seq=%d %s", u.name, u.seq, secret()[:8])
	r.ledger.Attempt(u.name, title, body)
	a := r.do(ctx, u, u.active, "POST", "/notes", url.Values{"title": {title}, "body": {body}})
	switch {
	case a.err != nil, a.code >= 500:
	case a.code == 303 && a.location == "/notes":
		r.ledger.Ack(u.name, title)
		u.lastOK.Store(a.start.UnixNano())
		return true
	case a.loginRedirect():
		r.sessionGone(ctx, u, a)
	default:
		r.fail("%s: write a note: %v", u.name, a)
	}
	return false
}

// readNotes reads u's notes from the active session and checks them.
func (r *run) readNotes(ctx context.Context, u *user) {
	want := r.ledger.Acked(u.name)
	a := r.do(ctx, u, u.active, "GET", "/notes", nil)
	switch {
	case a.err != nil, a.code >= 500:
	case a.code == 200:
		r.checkNotes(u, a, want)
		u.lastOK.Store(a.start.UnixNano())
	case a.loginRedirect():
		r.sessionGone(ctx, u, a)
	default:
		r.fail("%s: read the notes: %v", u.name, a)
	}
}

// sessionGone handles the active session's end: expected once Redis has
// lost its data (the user logs in again, which unlocks the vault),
// a failure before.
func (r *run) sessionGone(ctx context.Context, u *user, a answer) {
	if !r.sessionsMayEnd.Load() {
		r.fail("%s: the active session ended though Redis kept its data: %v", u.name, a)
	}
	deadline := time.Now().Add(reloginBound)
	for ctx.Err() == nil {
		u.active.ip = u.nextIP()
		l := r.do(ctx, u, u.active, "POST", "/login", url.Values{"username": {u.name}, "password": {u.password}})
		if l.code == 303 && l.location == "/notes" {
			u.relogins.Add(1)
			return
		}
		if (l.err == nil && l.code < 500) || time.Now().After(deadline) {
			r.fail("%s: log in again after the session ended: %v", u.name, l)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// activeLoop reads and writes u's notes until ctx ends.
func (r *run) activeLoop(ctx context.Context, u *user) {
	for i := 0; ctx.Err() == nil; i++ {
		if i%2 == 0 {
			r.readNotes(ctx, u)
		} else {
			r.writeNote(ctx, u)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// The outcomes of probeRevoked.
const (
	refused  = iota // a redirect to the login page
	failed          // an error page or no answer: not a refusal for good, not an acceptance
	accepted        // anything else
)

// probeRevoked sends one request (kind i%3: read the notes, write one,
// list the devices) with a revoked session, and says whether the app
// refused it for good (a redirect to the login page), failed (a 5xx
// error page, while a server is down or coming back) or accepted it
// (anything else: a failure of the test). A note written through it is
// recorded in the ledger under a name of its own, so that the final
// reads find it foreign if it was stored.
func (r *run) probeRevoked(ctx context.Context, u *user, s *browser, i int) int {
	var a answer
	switch i % 3 {
	case 0:
		a = r.do(ctx, u, s, "GET", "/notes", nil)
	case 1:
		title := fmt.Sprintf("REVOKED-%s-%d", u.name, i)
		r.ledger.Attempt("revoked:"+u.name, title, "revoked")
		a = r.do(ctx, u, s, "POST", "/notes", url.Values{"title": {title}, "body": {"revoked"}})
	case 2:
		a = r.do(ctx, u, s, "GET", "/devices", nil)
	}
	switch {
	case a.err != nil, a.code >= 500:
		return failed
	case a.loginRedirect():
		return refused
	}
	r.fail("%s: a revoked session (%s) was accepted: %v", u.name, s.what, a)
	return accepted
}

// probeUntilRefused sends requests with a revoked session until the app
// refuses one with a login redirect (at most recoveryBound), or accepts
// one.
func (r *run) probeUntilRefused(ctx context.Context, u *user, s *browser) {
	deadline := time.Now().Add(recoveryBound)
	for i := 0; ; i++ {
		if r.probeRevoked(ctx, u, s, i) != failed {
			return
		}
		if time.Now().After(deadline) {
			r.fail("%s: no clear refusal of a revoked session (%s) within %v", u.name, s.what, recoveryBound)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// revokedLoop keeps trying u's revoked sessions until ctx ends.
func (r *run) revokedLoop(ctx context.Context, u *user) {
	for i := 0; ctx.Err() == nil; i++ {
		list := u.revokedList()
		r.probeRevoked(ctx, u, list[i%len(list)], i/len(list))
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// goingDown marks a server as about to go down (flag), and starts
// counting the error pages anew.
func (r *run) goingDown(flag *atomic.Bool) {
	r.downErrors.Store(0)
	flag.Store(true)
}

// expectDownErrors checks that the outage was seen: some request sent
// while a server was down was answered with an error page (the users'
// reads need both servers), and resets the count.
func (r *run) expectDownErrors(what string) {
	if n := r.downErrors.Swap(0); n == 0 {
		r.fail("%s: no request failed while it was down: the outage was not tested", what)
	}
}

// back is called once a server is back up (start: when it went down): the
// revoked sessions must be refused right away, and every user served
// again within bound.
func (r *run) back(what string, start time.Time, bound time.Duration) {
	r.t.Helper()
	up := time.Now()
	r.setPhase("after " + what)
	for _, u := range r.users {
		for _, s := range u.revokedList() {
			r.probeUntilRefused(r.t.Context(), u, s)
		}
	}
	deadline := up.Add(bound)
	for {
		var waiting []string
		for _, u := range r.users {
			if u.lastOK.Load() < up.UnixNano() {
				waiting = append(waiting, u.name)
			}
		}
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: %v not served again within %v of the server's return\n%s", what, waiting, bound, tail(r.app.stderr.String(), 4000))
		}
		r.sleep(20 * time.Millisecond)
	}
	msg := fmt.Sprintf("%s: down %v, every user served again %v after", what, up.Sub(start).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	r.t.Log(msg)
	r.mu.Lock()
	r.recoveries = append(r.recoveries, msg)
	r.mu.Unlock()
}

// finalCheck logs every user in from a new client, and reads every note
// acknowledged; then locks, unlocks with a recovery key, reads them
// again, locks, unlocks with the password, reads them again. Every
// revoked session is refused one last time.
func (r *run) finalCheck() {
	ctx := r.t.Context()
	r.setPhase("final check")
	for _, u := range r.users {
		b := r.newBrowser(u)
		r.login(ctx, u, b, "final check")
		read := func(what string) {
			r.t.Helper()
			want := r.ledger.Acked(u.name)
			a := r.do(ctx, u, b, "GET", "/notes", nil)
			r.expect(u.name+": notes, "+what, a, 200, "")
			r.checkNotes(u, a, want)
		}
		read("after logging in")
		r.expect("lock", r.do(ctx, u, b, "POST", "/lock", url.Values{}), 303, "/unlock")
		r.expect("notes while locked", r.do(ctx, u, b, "GET", "/notes", nil), 303, "/unlock")
		a := r.do(ctx, u, b, "POST", "/unlock/recovery-key", url.Values{"recovery_key": {u.keys[0]}})
		r.expect(u.name+": unlock with a recovery key", a, 200, "")
		if next := recoveryKey.FindString(a.body); next == "" || next == u.keys[0] {
			r.fail("%s: unlocking with a recovery key showed no new key: %s", u.name, a.body)
		}
		read("unlocked with a recovery key")
		r.expect("lock", r.do(ctx, u, b, "POST", "/lock", url.Values{}), 303, "/unlock")
		r.expect(u.name+": unlock with the password", r.do(ctx, u, b, "POST", "/unlock", url.Values{"password": {u.password}}), 303, "/notes")
		read("unlocked with the password")
		for _, s := range u.revokedList() {
			for i := range 3 {
				if got := r.probeRevoked(ctx, u, s, i); got == failed {
					r.fail("%s: a revoked session (%s) was not refused clearly at the end", u.name, s.what)
				}
			}
		}
	}
}

// checkLog scans the app's log (once it has exited) for panics and
// secrets.
func (r *run) checkLog() {
	log := r.app.stderr.String()
	for _, bad := range []string{"panic", "goroutine "} {
		if i := strings.Index(log, bad); i >= 0 {
			r.t.Errorf("the app's log holds %q: %s", bad, log[max(0, i-500):min(len(log), i+2000)]) // never hidden by fail's cap
		}
	}
	secrets := slices.Clone(r.pageSecrets)
	for _, u := range r.users {
		secrets = append(secrets, u.keys...)
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			r.t.Errorf("the app's log holds a secret (a password, a server's URL or a recovery key)")
		}
	}
}

// report logs the campaign's numbers.
func (r *run) report() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range r.phases {
		s := r.stats[name]
		r.t.Logf("%-45s ok %5d  5xx %4d (503 %4d)  login redirects %4d  no answer %d", name, s.ok, s.serverErr, s.unavailable, s.loginRedirect, s.noAnswer)
	}
	for _, u := range r.users {
		attempted, acked := r.ledger.Counts(u.name)
		r.t.Logf("%s: %d notes written, %d acknowledged, all read back; logged in again %d time(s); %d revoked sessions refused throughout",
			u.name, attempted, acked, u.relogins.Load(), len(u.revokedList()))
	}
	// The app's errors, by message (numbers taken out, so that the same
	// error on two connections counts as one).
	counts := map[string]int{}
	for line := range strings.Lines(r.app.stderr.String()) {
		var ev struct{ Level, Msg, Error string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Level != "INFO" {
			first, _, _ := strings.Cut(ev.Error, "\n")
			counts[ev.Level+" "+ev.Msg+": "+digits.ReplaceAllString(first, "N")]++
		}
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		r.t.Logf("app log: %4d × %.300s", counts[k], k)
	}
	if n := r.failures.Load(); n > 0 {
		r.t.Logf("%d failures in all; the app's log ends:\n%s", n, tail(r.app.stderr.String(), 4000))
	}
}
