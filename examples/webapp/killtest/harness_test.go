package killtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// The harness: the web app's binary, built once into a temporary
// directory; a child process of it on a database directory; browsers (a
// cookie jar and a client address each) that talk to whichever child runs
// on that directory now; a watcher of the database's files that sees the
// app's writes land.

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// TestMain removes the built binary at the end.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// appBinary builds examples/webapp into a temporary directory (never into the
// repository), once per test process.
func appBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEYHOLD_KILLTEST_BIN"); p != "" {
		return p // a binary built beforehand (go build -o PATH ./examples/webapp)
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "keyhold-killtest-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "webapp")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/keyhold/keyhold/examples/webapp")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build examples/webapp: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// lowCostFlag is the test-only flag that would make the app's vault
// slots cheap (kdf.InteractiveParams instead of the 64 MiB default). The
// app has none yet: the harness passes it when the binary's -h lists it,
// and otherwise runs the vault's KDF at its real cost.
const lowCostFlag = "-test-low-cost-kdf"

var (
	lowCostOnce sync.Once
	lowCostOK   bool
)

func lowCostKDF(t *testing.T) bool {
	lowCostOnce.Do(func() {
		out, _ := exec.Command(appBinary(t), "-h").CombinedOutput()
		lowCostOK = bytes.Contains(out, []byte(lowCostFlag[1:]))
		t.Logf("the app's vault KDF: %s", map[bool]string{true: "low cost (" + lowCostFlag + ")", false: "its real cost (the binary has no " + lowCostFlag + ")"}[lowCostOK])
	})
	return lowCostOK
}

// syncBuf collects a child's stderr (its JSON log).
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// child is one run of the app's binary.
type child struct {
	cmd    *exec.Cmd
	port   int
	log    *syncBuf
	waited chan struct{}
}

// dbFile is the database's name in a trial's directory.
const dbFile = "webapp.db"

// appEnv is the environment of the children: this one's, without the
// app's own variables (a KEYHOLD_WEBAPP_POSTGRES in the environment would
// move the app off SQLite).
func appEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYHOLD_WEBAPP_") {
			env = append(env, kv)
		}
	}
	return env
}

// startApp runs the binary on dir's database, on a port of its choosing,
// behind a "proxy" at 127.0.0.1 so that each browser has a client address
// of its own (X-Forwarded-For): the per-address limits (5 logins per 15
// minutes) then do not end a run of hundreds of logins.
func startApp(t *testing.T, dir string) *child {
	t.Helper()
	args := []string{"-db", filepath.Join(dir, dbFile), "-addr", "127.0.0.1:0", "-trusted-proxy", "127.0.0.1/32"}
	if lowCostKDF(t) {
		args = append(args, lowCostFlag)
	}
	cmd := exec.Command(appBinary(t), args...)
	cmd.Env = appEnv()
	c := &child{cmd: cmd, log: &syncBuf{}, waited: make(chan struct{})}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A test that fails (t.Fatal) leaves no child behind.
	t.Cleanup(c.kill)
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			c.log.Write([]byte(line + "\n"))
			if strings.Contains(line, `"webapp.listening"`) {
				var m struct{ Addr string }
				if json.Unmarshal([]byte(line), &m) == nil {
					if _, p, err := net.SplitHostPort(m.Addr); err == nil {
						n, _ := strconv.Atoi(p)
						ready <- n
					}
				}
			}
		}
		io.Copy(io.Discard, pipe)
		cmd.Wait()
		close(c.waited)
	}()
	select {
	case c.port = <-ready:
		return c
	case <-c.waited:
		t.Fatalf("the app exited at start:\n%s", tail(c.log.String(), 20))
	case <-time.After(60 * time.Second):
		c.kill()
		t.Fatalf("the app did not start in 60 s:\n%s", tail(c.log.String(), 20))
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.waited
}

// stop asks the app to shut down (SIGTERM: it closes the database) and
// waits.
func (c *child) stop(t *testing.T) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.waited:
	case <-time.After(30 * time.Second):
		c.kill()
		t.Fatalf("the app did not stop on SIGTERM in 30 s")
	}
}

// target is the app a browser talks to: the child running now on the
// trial's database (the port changes at each restart).
type target struct {
	port atomic.Int64
	cur  atomic.Pointer[child]
}

func (tg *target) set(c *child) {
	tg.cur.Store(c)
	tg.port.Store(int64(c.port))
}

// A browser is a cookie jar and a client address. Its requests go to
// http://localhost:PORT (the origin passkeys are bound to), dialled at
// 127.0.0.1.
type browser struct {
	t      *testing.T
	tg     *target
	ip     string
	jar    http.CookieJar
	client *http.Client
	// failOn5xx: a 5xx answer fails the test (every request after a
	// restart, and the operation's own, which must not answer 5xx either).
	failOn5xx bool
	// seen5xx collects the 5xx answers when failOn5xx is off.
	seen5xx []string
}

var ipCounter atomic.Uint32

func newBrowser(t *testing.T, tg *target) *browser {
	jar, _ := cookiejar.New(nil)
	n := ipCounter.Add(1)
	b := &browser{t: t, tg: tg, ip: fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff), jar: jar, failOn5xx: true}
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", tg.port.Load()))
		},
	}
	b.client = &http.Client{Transport: tr, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

// resp is an answer.
type resp struct {
	code      int
	loc, body string
	ct        string
}

func (r resp) String() string {
	return fmt.Sprintf("%d %s %s", r.code, r.loc, tail(r.body, 3))
}

func (b *browser) base() string { return fmt.Sprintf("http://localhost:%d", b.tg.port.Load()) }

// origin is the app's origin now (passkeys' client data names it).
func (b *browser) origin() string { return b.base() }

// try sends a request; an error is a connection that failed (the app
// killed under it).
func (b *browser) try(method, path, ctype string, body io.Reader) (resp, error) {
	req, err := http.NewRequest(method, b.base()+path, body)
	if err != nil {
		return resp{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("X-Forwarded-For", b.ip)
	res, err := b.client.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	r := resp{code: res.StatusCode, loc: res.Header.Get("Location"), body: string(data), ct: res.Header.Get("Content-Type")}
	if r.code >= 500 {
		msg := fmt.Sprintf("%s %s: %d\n%s", method, path, r.code, tail(r.body, 5))
		if b.failOn5xx {
			log := ""
			if c := b.tg.cur.Load(); c != nil {
				log = tail(c.log.String(), 15)
			}
			b.t.Fatalf("5xx answer: %s\napp log:\n%s", msg, log)
		}
		b.seen5xx = append(b.seen5xx, msg)
	}
	return r, nil
}

// must sends a request and fails the test if the connection fails.
func (b *browser) must(method, path, ctype string, body io.Reader) resp {
	b.t.Helper()
	r, err := b.try(method, path, ctype, body)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (b *browser) get(path string) resp { b.t.Helper(); return b.must("GET", path, "", nil) }

func (b *browser) post(path string, form url.Values) resp {
	b.t.Helper()
	return b.must("POST", path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

func (b *browser) tryPost(path string, form url.Values) (resp, error) {
	return b.try("POST", path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

func (b *browser) api(path, body string) resp {
	b.t.Helper()
	return b.must("POST", path, "application/json", strings.NewReader(body))
}

// expect fails unless r has the status and (for a redirect) the location.
func expect(t *testing.T, what string, r resp, code int, loc string) {
	t.Helper()
	if r.code != code || (loc != "" && r.loc != loc) {
		t.Fatalf("%s: got %s, want %d %s", what, r, code, loc)
	}
}

// copyDir copies the regular files of src into a new directory dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// writeWatcher polls the database file and its WAL (size and modification
// time) and numbers the changes it sees: each is a write of the app
// landing in the file (a commit appends frames to the WAL).
type writeWatcher struct {
	n    atomic.Int64
	stop chan struct{}
	done chan struct{}
	// at is called with each change's number, from the watcher's
	// goroutine.
	at func(n int64)
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.Size(), fi.ModTime()}
}

func watchWrites(dir string, at func(n int64)) *writeWatcher {
	w := &writeWatcher{stop: make(chan struct{}), done: make(chan struct{}), at: at}
	paths := []string{filepath.Join(dir, dbFile+"-wal"), filepath.Join(dir, dbFile)}
	last := make([]fileStamp, len(paths))
	for i, p := range paths {
		last[i] = stampOf(p)
	}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			for i, p := range paths {
				if s := stampOf(p); s != last[i] {
					last[i] = s
					n := w.n.Add(1)
					if w.at != nil {
						w.at(n)
					}
				}
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	return w
}

func (w *writeWatcher) close() int64 {
	close(w.stop)
	<-w.done
	return w.n.Load()
}

// A scenario is one operation under test.
type scenario struct {
	name string
	// golden makes the database every trial starts from, in dir.
	golden func(t *testing.T, dir string) *account
	// prepare runs before the operation (its writes are not watched).
	prepare func(tr *trial)
	// op runs the operation; it records in tr what the app acknowledged.
	// It returns an error when a request failed (the kill).
	op func(tr *trial) error
	// check runs after the restart.
	check func(tr *trial)
}

// account is the user of a golden database, with what the trials need.
type account struct {
	user, pass string
	notes      []noteText
	totpSecret string
	codes      []string // login recovery codes
	// cookies are those of the golden database's session, which every
	// trial's browser starts with (a login costs two KDF runs, one of
	// them the vault's, at its real cost: the trials save them), and
	// made when that session began: it is fresh for 5 minutes.
	cookies []*http.Cookie
	made    time.Time
	// other are the cookies of another device's session, logged in with
	// the password: a password change, a new authenticator and a new
	// passkey end it.
	other []*http.Cookie
}

// goldenMaxAge is how long a golden database serves: its session's
// freshness (RequireFresh) and a pending login both last 5 minutes.
const goldenMaxAge = 3 * time.Minute

var localhost = &url.URL{Scheme: "http", Host: "localhost", Path: "/"}

type noteText struct{ title, body string }

// trial is one run: the operation, the kill, the restart and the checks.
type trial struct {
	t   *testing.T
	i   int
	rng *rand.Rand
	dir string
	// gold is the golden database's directory.
	gold string
	tg   *target
	acc  *account
	// b is the browser that ran the operation.
	b *browser
	// acked lists the steps the app answered before the kill.
	acked map[string]bool
	// vars are what prepare passes to op and check.
	vars map[string]any
	// outcome is what the check found, for the report.
	outcome string
	// breakMode, when set (KEYHOLD_KILLTEST_BREAK), damages the database
	// between the kill and the restart, to show the checks fail.
	breakMode string
}

func (tr *trial) ack(step string) { tr.acked[step] = true }

// killPlan is when a trial's kill comes.
type killPlan struct {
	desc  string
	delay time.Duration // after the operation starts (when write == 0)
	write int64         // kill as the write-th change of the files is seen
	extra time.Duration // wait this long after that change
}

// stats are a scenario's counts, for the report.
type stats struct {
	mu       sync.Mutex
	trials   int
	byPlan   map[string]int
	outcomes map[string]int
	writesAt map[string]map[int64]int // per outcome, kills by the number of writes seen before them
}

func (s *stats) add(plan string, writes int64, outcome string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trials++
	s.byPlan[plan]++
	s.outcomes[outcome]++
	if s.writesAt[outcome] == nil {
		s.writesAt[outcome] = map[int64]int{}
	}
	s.writesAt[outcome][writes]++
}

// calibrate runs the operation once without a kill: its duration and
// the number of file changes it makes, for the kill plans; then checks the
// finished state.
func calibrate(t *testing.T, sc scenario, gold string, acc *account) (time.Duration, int64) {
	t.Helper()
	tr, c := newTrial(t, -1, rand.New(rand.NewPCG(1, 2)), sc, gold, acc)
	sc.prepare(tr)
	w := watchWrites(tr.dir, nil)
	start := time.Now()
	if err := sc.op(tr); err != nil {
		t.Fatalf("calibration: the operation failed without a kill: %v\n%s", err, tail(c.log.String(), 15))
	}
	d := time.Since(start)
	n := w.close()
	c.kill()
	restart(tr)
	sc.check(tr)
	tr.tg.cur.Load().kill()
	os.RemoveAll(tr.dir)
	return d, n
}

func newTrial(t *testing.T, i int, rng *rand.Rand, sc scenario, gold string, acc *account) (*trial, *child) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("trial-%d", i))
	copyDir(t, gold, dir)
	tr := &trial{t: t, i: i, rng: rng, dir: dir, gold: gold, tg: &target{}, acc: acc, acked: map[string]bool{}, vars: map[string]any{},
		breakMode: os.Getenv(breakEnv)}
	c := startApp(t, dir)
	tr.tg.set(c)
	tr.b = newBrowser(t, tr.tg)
	tr.b.jar.SetCookies(localhost, acc.cookies)
	return tr, c
}

// breakEnv names a way to damage the database between the kill and the
// restart (see breakDB), to show that the checks fail on a broken state.
const breakEnv = "KEYHOLD_KILLTEST_BREAK"

func restart(tr *trial) {
	if tr.breakMode != "" {
		breakDB(tr)
	}
	c := startApp(tr.t, tr.dir)
	tr.tg.set(c)
}

// probePages are read by the operating browser's session right after the
// restart, whatever state the kill left: none may answer 5xx.
var probePages = []string{"/", "/notes", "/account", "/account/rotate", "/2fa", "/passkeys", "/devices", "/recovery-keys", "/unlock", "/login/2fa"}

func probe(tr *trial) {
	for _, p := range probePages {
		tr.b.get(p)
	}
}

// errOpAborted: the operation's goroutine ended on a failed check.
var errOpAborted = errors.New("the operation's checks failed")

// runTrial runs one trial with the plan given.
func runTrial(t *testing.T, i int, rng *rand.Rand, sc scenario, gold string, acc *account, plan killPlan, st *stats) {
	t.Helper()
	t0 := time.Now()
	tr, c := newTrial(t, i, rng, sc, gold, acc)
	defer os.RemoveAll(tr.dir)
	t1 := time.Now()
	sc.prepare(tr)
	t2 := time.Now()
	killNow := make(chan struct{})
	var once sync.Once
	fire := func() { once.Do(func() { close(killNow) }) }
	w := watchWrites(tr.dir, func(n int64) {
		if plan.write > 0 && n == plan.write {
			if plan.extra > 0 {
				time.Sleep(plan.extra)
			}
			fire()
		}
	})
	opErr := make(chan error, 1)
	go func() {
		// A check of the operation's answer that fails (t.Fatalf) ends
		// this goroutine: the test goroutine then stops too.
		err := errOpAborted
		defer func() { opErr <- err }()
		err = sc.op(tr)
	}()
	var timer <-chan time.Time
	if plan.write == 0 {
		timer = time.After(plan.delay)
	}
	finished := false
	select {
	case <-killNow:
	case <-timer:
	case err := <-opErr:
		finished = true
		if errors.Is(err, errOpAborted) {
			c.kill()
			t.FailNow()
		}
		if err != nil {
			t.Fatalf("trial %d: the operation failed before the kill: %v\n%s", i, err, tail(c.log.String(), 15))
		}
	}
	c.kill()
	writes := w.close()
	if !finished {
		if err := <-opErr; errors.Is(err, errOpAborted) { // the request in flight fails with the connection
			t.FailNow()
		}
	}
	t3 := time.Now()
	restart(tr)
	t4 := time.Now()
	probe(tr)
	sc.check(tr)
	t5 := time.Now()
	tr.tg.cur.Load().kill()
	if os.Getenv("KEYHOLD_KILLTEST_TIMING") != "" {
		t.Logf("trial %d: start %v prepare %v op %v restart %v check %v", i, t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3), t5.Sub(t4))
	}
	desc := plan.desc
	if finished {
		desc += " (came after the end)"
	}
	st.add(desc, writes, tr.outcome)
}

// runScenario makes the golden database, calibrates, and runs n trials:
// half killed at a random time across the operation's duration, half as
// the app's k-th write lands in the files (k random up to the number the
// operation makes).
func runScenario(t *testing.T, sc scenario, n int) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL on Windows")
	}
	seed := rand.Uint64()
	if s := os.Getenv("KEYHOLD_KILLTEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (KEYHOLD_KILLTEST_SEED repeats the choices, not the timing)", seed)
	rng := rand.New(rand.NewPCG(seed, ^seed))
	start := time.Now()
	gold := filepath.Join(t.TempDir(), "golden")
	acc := sc.golden(t, gold)
	d, writes := calibrate(t, sc, gold, acc)
	goldens := 1
	t.Logf("%s: the operation takes %v and changes the database files %d times", sc.name, d.Round(time.Millisecond), writes)
	st := &stats{byPlan: map[string]int{}, outcomes: map[string]int{}, writesAt: map[string]map[int64]int{}}
	for i := range n {
		var plan killPlan
		if k, err := strconv.ParseInt(os.Getenv("KEYHOLD_KILLTEST_AT_WRITE"), 10, 64); err == nil && k > 0 {
			plan = killPlan{desc: "at a write", write: k} // a reproduction: every kill at the k-th write
		} else if i%2 == 0 || writes == 0 {
			plan = killPlan{desc: "random time", delay: time.Duration(rng.Int64N(int64(d)*23/20 + 1))}
		} else {
			plan = killPlan{desc: "at a write", write: 1 + rng.Int64N(writes)}
			if rng.IntN(2) == 0 {
				plan.extra = time.Duration(rng.IntN(500)) * time.Microsecond
			}
		}
		if time.Since(acc.made) > goldenMaxAge {
			gold = filepath.Join(t.TempDir(), "golden")
			acc = sc.golden(t, gold)
			goldens++
		}
		runTrial(t, i, rng, sc, gold, acc, plan, st)
	}
	t.Logf("%s: %d kills in %v (%d golden databases); plans %v", sc.name, st.trials, time.Since(start).Round(time.Millisecond), goldens, st.byPlan)
	for o, n := range st.outcomes {
		t.Logf("%s: outcome %q: %d kills; by writes seen before the kill: %v", sc.name, o, n, st.writesAt[o])
	}
}

// trials is the number of kills per scenario: the test runs only in the
// long campaign (building the binary alone takes longer than a short
// test may).
func trials(t *testing.T, long int) int {
	t.Helper()
	if !testenv.Long() {
		t.Skipf("builds the web app's binary and kills it hundreds of times: runs with %s=1 (as in CI)", testenv.LongEnv)
	}
	if s := os.Getenv("KEYHOLD_KILLTEST_TRIALS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return long
}

// ---- Pages ----

var (
	reSecret   = regexp.MustCompile(`<code id="secret">([A-Z2-7 ]+)</code>`)
	reToken    = regexp.MustCompile(`name="token" value="([^"]+)"`)
	reCode     = regexp.MustCompile(`<li><code>([^<]+)</code></li>`)
	reArticle  = regexp.MustCompile(`<article class="note">`)
	errNoMatch = errors.New("no match")
)

func find(re *regexp.Regexp, s string) (string, error) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return "", errNoMatch
	}
	return m[1], nil
}

// signup makes the account (its own client address: sign-ups are
// limited per address).
func signup(t *testing.T, b *browser, user, pass string) {
	t.Helper()
	expect(t, "sign-up", b.post("/signup", url.Values{"username": {user}, "password": {pass}}), 303, "/recovery-keys")
	expect(t, "recovery keys page", b.get("/recovery-keys"), 200, "")
}

func login(b *browser, user, pass string) resp {
	b.t.Helper()
	return b.post("/login", url.Values{"username": {user}, "password": {pass}})
}

// addNotes adds n notes with distinct titles and bodies.
func addNotes(t *testing.T, b *browser, n int) []noteText {
	t.Helper()
	var notes []noteText
	for i := range n {
		nt := noteText{title: fmt.Sprintf("note-%03d-title", i), body: fmt.Sprintf("note %03d body, kept through every kill", i)}
		expect(t, "add note", b.post("/notes", url.Values{"title": {nt.title}, "body": {nt.body}}), 303, "")
		notes = append(notes, nt)
	}
	return notes
}

// checkNotes reads the notes page of an unlocked browser: every note of
// the account, intact, and no other.
func checkNotes(tr *trial, b *browser, who string) {
	tr.t.Helper()
	r := b.get("/notes")
	if r.code != 200 {
		tr.t.Fatalf("trial %d: %s: notes page: %s", tr.i, who, r)
	}
	if strings.Contains(r.body, "(unreadable)") {
		tr.t.Fatalf("trial %d: %s: a note is unreadable after the restart", tr.i, who)
	}
	if got := len(reArticle.FindAllString(r.body, -1)); got != len(tr.acc.notes) {
		tr.t.Fatalf("trial %d: %s: %d notes, want %d", tr.i, who, got, len(tr.acc.notes))
	}
	for _, n := range tr.acc.notes {
		if !strings.Contains(r.body, "<h2>"+n.title+"</h2>") || !strings.Contains(r.body, n.body) {
			tr.t.Fatalf("trial %d: %s: note %q is missing or changed", tr.i, who, n.title)
		}
	}
}

// makeGolden starts the app on dir, makes the account with notes (its
// sign-up session, fresh and unlocked, is the one the trials start with),
// runs more (which may set acc.cookies to another session's) and stops the
// app cleanly.
func makeGolden(t *testing.T, dir string, nNotes int, more func(b *browser, acc *account)) *account {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := startApp(t, dir)
	tg := &target{}
	tg.set(c)
	b := newBrowser(t, tg)
	acc := &account{user: "ada", pass: "correct horse battery staple 1", made: time.Now()}
	signup(t, b, acc.user, acc.pass)
	acc.notes = addNotes(t, b, nNotes)
	acc.cookies = b.jar.Cookies(localhost)
	o := newBrowser(t, tg)
	expect(t, "the other device's login", login(o, acc.user, acc.pass), 303, "/notes")
	acc.other = o.jar.Cookies(localhost)
	if more != nil {
		more(b, acc)
	}
	c.stop(t)
	return acc
}
