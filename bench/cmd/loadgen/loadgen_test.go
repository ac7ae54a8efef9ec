package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyhold/keyhold/internal/testenv"
)

// The binaries are built once per test run, into a directory removed by
// TestMain.
var (
	buildOnce sync.Once
	buildDir  string
	built     binaries
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func testBinaries(t *testing.T) binaries {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "keyhold-loadgen-test-"); buildErr != nil {
			return
		}
		start := time.Now()
		built, buildErr = build(context.Background(), buildDir)
		t.Logf("built the web app and the bare server in %s", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func longOnly(t *testing.T) {
	t.Helper()
	if !testenv.Long() {
		t.Skipf("runs in long mode (%s=1): it builds the web app and loads it for seconds", testenv.LongEnv)
	}
}

// testWriter sends the harness's progress to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestLoadSmoke runs a few seconds of the load test on SQLite, and on
// PostgreSQL and Redis (KEYHOLD_TEST_POSTGRES_DSN, KEYHOLD_TEST_REDIS_URL),
// and requires every read of the notes page (and of each reference) to be
// answered as expected, the app to log no error or panic, and the run's
// schema and Redis keys to be gone after it.
func TestLoadSmoke(t *testing.T) {
	longOnly(t)
	bins := testBinaries(t)
	cfg := loadConfig{Duration: 3 * time.Second, Slice: time.Second, Warmup: 300 * time.Millisecond, Concurrency: 4, Notes: 2, StaticRef: true, Log: testWriter{t}}
	check := func(t *testing.T, st storage) {
		res, err := runLoad(t.Context(), bins, t.TempDir(), st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range res.Targets {
			if n, e := tg.n.Load(), tg.errs.Load(); n == 0 || e > 0 {
				first := ""
				if p := tg.first.Load(); p != nil {
					first = *p
				}
				t.Errorf("%s: %d requests answered as expected, %d errors (first: %s)", tg.name, n, e, first)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) { check(t, storage{name: "sqlite"}) })
	t.Run("postgres+redis", func(t *testing.T) {
		dsn := testenv.Env(t, "KEYHOLD_TEST_POSTGRES_DSN", "the PostgreSQL the web app's load smoke test runs on")
		redisURL := testenv.Env(t, "KEYHOLD_TEST_REDIS_URL", "the Redis the web app's load smoke test runs on")
		st, err := newStorage(t.Context(), dsn, redisURL)
		if err != nil {
			t.Fatal(err)
		}
		cleaned := false
		t.Cleanup(func() {
			if !cleaned {
				st.cleanup()
			}
		})
		check(t, st)
		msg, err := st.cleanup()
		cleaned = true
		if err != nil {
			t.Fatal(err)
		}
		t.Log(msg)
		if n, err := countKeys(context.Background(), redisURL, st.redisPrefix); err != nil || n != 0 {
			t.Errorf("after cleanup: %d keys under %s (%v)", n, st.redisPrefix, err)
		}
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var exists bool
		if err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)", st.schema).Scan(&exists); err != nil || exists {
			t.Errorf("after cleanup: schema %s exists: %v (%v)", st.schema, exists, err)
		}
	})
}

// TestStormHoldsBudget runs a short login storm on SQLite (200 flood
// clients on 3 accounts, 20 legitimate users, 12 s) and requires what
// checkStorm checks: the app's peak RSS within its KDF gate's budget plus
// the margin, every legitimate user logged in (during the flood or the
// grace after it), the flood met by queue refusals (503) and refusals for
// its addresses (429: the default -flood-addrs puts twice as many clients
// on an address as it may have logins in progress), no other 5xx, no
// request unanswered, no error or panic in the app's log.
func TestStormHoldsBudget(t *testing.T) {
	longOnly(t)
	bins := testBinaries(t)
	// The margin's allowance for the process outside the KDF: 96 MiB. The
	// app holds 43 MiB before any request, and the storms measured so far
	// peaked at 381-383 MiB with the gate's 256 MiB budget on 2 cores,
	// leaving 63 MiB for the rest: 64 MiB would leave a test that fails
	// on one more MiB of connection buffers, while the claim under test is
	// the gate's bound (without the gate the peak was 1.5 GiB).
	floodAddrs, err := defaultFloodAddrs(200)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stormConfig{Duration: 12 * time.Second, Flood: 200, FloodAddrs: floodAddrs, Legit: 20, Attacked: 3, RightEvery: 10,
		LegitPause: 2 * time.Second, RetryPause: 500 * time.Millisecond, Grace: 30 * time.Second, OtherKiB: 96 << 10, Log: testWriter{t}}
	res, err := runStorm(t.Context(), bins, t.TempDir(), storage{name: "sqlite"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkStorm(res, cfg); err != nil {
		t.Error(err)
	}
}

// TestCheckStormCatches shows that checkStorm refuses each broken claim.
func TestCheckStormCatches(t *testing.T) {
	cfg := stormConfig{Legit: 2, Grace: time.Second}
	good := func() *stormResult {
		r := &stormResult{BudgetKiB: 256 << 10, MarginKiB: 128 << 10, PeakHWM: 300 << 10, Legit: newLegitStats(2)}
		r.Legit.During[0].Store(1)
		r.Legit.After[1].Store(1)
		r.Flood[limited].Store(1)
		r.Flood[busy].Store(1)
		return r
	}
	if err := checkStorm(good(), cfg); err != nil {
		t.Fatalf("a storm that held: %v", err)
	}
	for name, breakIt := range map[string]func(*stormResult){
		"peak over budget + margin": func(r *stormResult) { r.PeakHWM = r.BudgetKiB + r.MarginKiB + 1 },
		"a legit user never in":     func(r *stormResult) { r.Legit.After[1].Store(0) },
		"no 503":                    func(r *stormResult) { r.Flood[busy].Store(0) },
		"no 429":                    func(r *stormResult) { r.Flood[limited].Store(0) },
		"a 500 to the flood":        func(r *stormResult) { r.Flood[server].Store(1) },
		"a 500 to a legit user":     func(r *stormResult) { r.Legit.Answers[server].Store(1) },
		"a request unanswered":      func(r *stormResult) { r.Flood[transport].Store(1) },
		"a request timed out":       func(r *stormResult) { r.Legit.Answers[timedOut].Store(1) },
		"a legit user refused 401":  func(r *stormResult) { r.Legit.Answers[wrong].Store(1) },
		"a legit user limited":      func(r *stormResult) { r.Legit.Answers[limited].Store(1) },
		"a panic in the log":        func(r *stormResult) { r.ProblemCount, r.Problems = 1, []string{"panic: boom"} },
	} {
		r := good()
		breakIt(r)
		if err := checkStorm(r, cfg); err == nil {
			t.Errorf("%s: checkStorm found nothing", name)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		a    answer
		err  error
		want outcome
	}{
		{answer{status: 303, location: "/notes"}, nil, loggedIn},
		{answer{status: 303, location: "/unlock"}, nil, lockedIn},
		{answer{status: 303, location: "/login/2fa"}, nil, other},
		{answer{status: 401}, nil, wrong},
		{answer{status: 429}, nil, limited},
		{answer{status: 503, busy: true}, nil, busy},
		{answer{status: 503}, nil, server},
		{answer{status: 500}, nil, server},
		{answer{status: 200}, nil, other},
		{answer{}, errors.New("connection reset"), transport},
		{answer{}, fmt.Errorf("Post: %w", context.DeadlineExceeded), timedOut},
		{answer{}, &net.OpError{Op: "read", Err: timeoutErr{}}, timedOut},
	} {
		if got := classify(c.a, c.err); got != c.want {
			t.Errorf("classify(%+v, %v) = %s, want %s", c.a, c.err, outcomeNames[got], outcomeNames[c.want])
		}
	}
}

func TestAddrBlock(t *testing.T) {
	b := &addrBlock{first: 16}
	seen := map[netip.Addr]bool{}
	for range 250*256 + 10 {
		a := b.addr()
		if seen[a] || !a.IsLoopback() || a.As4()[3] == 0 || a.As4()[3] == 255 || a.As4()[1] < 16 {
			t.Fatalf("address %s: repeated, not loopback, or .0/.255, or outside the block", a)
		}
		seen[a] = true
	}
	if got := b.addr(); got != netip.MustParseAddr("127.17.0.11") {
		t.Errorf("after 64,010 addresses: %s, want 127.17.0.11", got)
	}
}

func TestWithSearchPath(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/test?sslmode=disable": "postgres://postgres@127.0.0.1:5432/test?search_path=s1&sslmode=disable",
		"host=127.0.0.1 dbname=test":                              "host=127.0.0.1 dbname=test search_path=s1",
	} {
		got, err := withSearchPath(dsn, "s1")
		if err != nil || got != want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", dsn, got, err, want)
		}
	}
}

func TestDoRecognisesBusyPage(t *testing.T) {
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		body := "<p>Not found</p>"
		status := 503
		if r.URL.Path == "/busy" {
			h.Set("Retry-After", "5")
			body = "<h1>We are busy right now. Please try again in a few seconds.</h1>"
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	})
	c := newClient(rt, time.Second)
	for path, want := range map[string]bool{"/busy": true, "/other": false} {
		a, err := do(t.Context(), c, "http://127.0.0.1:1", path, nil)
		if err != nil || a.busy != want {
			t.Errorf("%s: busy %v (%v), want %v", path, a.busy, err, want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRowsFormat(t *testing.T) {
	var r rows
	r.ratio(ratioRow{Table: "load", What: "w", OursLabel: "o", Ours: 1, ReferenceLabel: "r", Reference: 2, Unit: "req/s"})
	r.fact("storm", "peak <RSS>", 300.5, "MiB", "")
	var b strings.Builder
	if err := r.write(&b); err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"ratio","table":"load","what":"w","ours_label":"o","ours":1,"reference_label":"r","reference":2,"unit":"req/s","lower_is_better":false}
{"kind":"fact","table":"storm","what":"peak <RSS>","value":300.5,"unit":"MiB"}
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func Example_percentile() {
	d := []time.Duration{5 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	fmt.Println(percentile(d, 0.5), percentile(d, 0.99), percentile(nil, 0.5))
	// Output: 3ms 5ms 0s
}
