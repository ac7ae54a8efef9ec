package kdf

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// breachHashParts returns the uppercase SHA-1 prefix and suffix of pw.
func breachHashParts(pw string) (prefix, suffix string) {
	sum := sha1.Sum([]byte(pw))
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	return h[:5], h[5:]
}

// breachPadding returns n padding lines (count 0) with random-looking
// suffixes that do not collide with real ones.
func breachPadding(n int) string {
	var b strings.Builder
	for i := range n {
		s := sha1.Sum([]byte(fmt.Sprint("pad", i)))
		fmt.Fprintf(&b, "%s:0\r\n", strings.ToUpper(hex.EncodeToString(s[:]))[5:])
	}
	return b.String()
}

// breachServer is a local Pwned Passwords range API that records what it
// receives. It never talks to the network.
type breachServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
	respond  func(w http.ResponseWriter, r *http.Request)
}

func newBreachServer(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *breachServer {
	t.Helper()
	s := &breachServer{respond: respond}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, r.Clone(context.Background()))
		s.bodies = append(s.bodies, body)
		s.mu.Unlock()
		s.respond(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// checker returns a PwnedChecker talking to the server.
func (s *breachServer) checker(t *testing.T, cfg PwnedCheckerConfig) *PwnedChecker {
	t.Helper()
	cfg.BaseURL = s.URL
	cfg.HTTPClient = s.Client()
	c, err := NewPwnedChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rangeResponder serves a fixed body for every prefix.
func rangeResponder(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}
}

// KDF-14 (b): only the 5-hex prefix leaves the process; the suffix is
// matched locally and padding is ignored.
func TestBreachPwnedCheckerOnlyPrefixLeaves(t *testing.T) {
	const pw = "P@ssw0rd"
	prefix, suffix := breachHashParts(pw)
	if prefix != "21BD1" || suffix != "2DC183F740EE76F27B78EB39C8AD972A757" {
		t.Fatalf("unexpected SHA-1 of fixture: %s %s", prefix, suffix)
	}
	body := breachPadding(400) + suffix + ":52579\r\n" + breachPadding(400)
	srv := newBreachServer(t, rangeResponder(body))
	c := srv.checker(t, PwnedCheckerConfig{UserAgent: "keyhold-test"})

	breached, err := c.Breached(t.Context(), []byte(pw))
	if err != nil || !breached {
		t.Fatalf("Breached = %v, %v; want true", breached, err)
	}
	if len(srv.requests) != 1 {
		t.Fatalf("%d requests", len(srv.requests))
	}
	r := srv.requests[0]
	if r.Method != http.MethodGet || r.URL.Path != "/range/"+prefix || r.URL.RawQuery != "" || len(srv.bodies[0]) != 0 {
		t.Fatalf("request %s %s?%s body %q", r.Method, r.URL.Path, r.URL.RawQuery, srv.bodies[0])
	}
	if r.Header.Get("Add-Padding") != "true" || r.Header.Get("User-Agent") != "keyhold-test" {
		t.Fatalf("headers %v", r.Header)
	}
	// Nothing but the prefix: no suffix, hash or password anywhere in the request.
	var dump strings.Builder
	dump.WriteString(r.URL.String())
	for k, vs := range r.Header {
		dump.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	for _, secret := range []string{pw, suffix[:8], strings.ToLower(suffix[:8])} {
		if strings.Contains(dump.String(), secret) {
			t.Fatalf("request contains %q:\n%s", secret, dump.String())
		}
	}
}

func TestBreachPwnedCheckerResponses(t *testing.T) {
	const pw = "correct horse battery staple"
	_, suffix := breachHashParts(pw)
	other := strings.Repeat("A", 35)
	for _, tc := range []struct {
		name     string
		body     string
		minCount int64
		want     bool
	}{
		{"listed", other + ":3\n" + suffix + ":7\n", 0, true},
		{"not listed", other + ":3\n" + breachPadding(10), 0, false},
		{"padding line with our suffix is ignored", breachPadding(5) + suffix + ":0\r\n" + breachPadding(5), 0, false},
		{"lowercase suffix", strings.ToLower(suffix) + ":2", 0, true},
		{"CRLF, no final newline", other + ":1\r\n" + suffix + ":9", 0, true},
		{"blank lines", "\n" + suffix + ":9\n\n", 0, true},
		{"below MinCount", suffix + ":4\n", 5, false},
		{"at MinCount", suffix + ":5\n", 5, true},
		{"empty body", "", 0, false},
		{"later match not short-circuited", suffix + ":1\n" + other + ":1\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBreachServer(t, rangeResponder(tc.body))
			c := srv.checker(t, PwnedCheckerConfig{MinCount: tc.minCount})
			got, err := c.Breached(t.Context(), []byte(pw))
			if err != nil || got != tc.want {
				t.Fatalf("Breached = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// Malformed or oversized responses and HTTP errors fail the check.
func TestBreachPwnedCheckerFailures(t *testing.T) {
	const pw = "correct horse battery staple"
	prefix, suffix := breachHashParts(pw)
	big := strings.Repeat(strings.Repeat("B", 35)+":1\r\n", 1000) + suffix + ":1\r\n" // 40 KiB
	for _, tc := range []struct {
		name    string
		respond func(http.ResponseWriter, *http.Request)
		max     int64
	}{
		{"HTML", rangeResponder("<html>captive portal</html>"), 0},
		{"no colon", rangeResponder(suffix + "\n"), 0},
		{"short suffix", rangeResponder(suffix[1:] + ":3\n"), 0},
		{"non-hex suffix", rangeResponder("G" + suffix[1:] + ":3\n"), 0},
		{"empty count", rangeResponder(suffix + ":\n"), 0},
		{"signed count", rangeResponder(suffix + ":+3\n"), 0},
		{"negative count", rangeResponder(suffix + ":-3\n"), 0},
		{"count overflow", rangeResponder(suffix + ":9999999999999999999\n"), 0},
		{"count with space", rangeResponder(suffix + ": 3\n"), 0},
		{"full hash", rangeResponder(prefix + suffix + ":3\n"), 0},
		{"line too long", rangeResponder(suffix + ":" + strings.Repeat("0", 40) + "1\n"), 0},
		{"very long line", rangeResponder(strings.Repeat("A", 10000)), 0},
		{"CR inside line", rangeResponder(suffix + ":3\rX\n"), 0},
		{"NUL", rangeResponder(suffix + ":3\x00\n"), 0},
		{"oversized body", rangeResponder(big), 1024},
		{"oversized default bound", rangeResponder(strings.Repeat(strings.Repeat("C", 35)+":1\n", 60000)), 0},
		{"HTTP 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, 0},
		{"HTTP 429", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "slow down", http.StatusTooManyRequests) }, 0},
		{"redirect loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.Path, http.StatusFound) }, 0},
		{"truncated body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, suffix+":1\n")
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBreachServer(t, tc.respond)
			c := srv.checker(t, PwnedCheckerConfig{MaxResponseBytes: tc.max})
			got, err := c.Breached(t.Context(), []byte(pw))
			if !errors.Is(err, ErrBreachCheckFailed) {
				t.Fatalf("Breached = %v, %v; want ErrBreachCheckFailed", got, err)
			}
			if msg := err.Error(); strings.Contains(msg, prefix) || strings.Contains(msg, "/range/") {
				t.Fatalf("error %q reveals the request URL", msg)
			}
		})
	}
	// The oversized body is accepted with a bound above its size.
	srv := newBreachServer(t, rangeResponder(big))
	if got, err := srv.checker(t, PwnedCheckerConfig{MaxResponseBytes: int64(len(big))}).Breached(t.Context(), []byte(pw)); err != nil || !got {
		t.Fatalf("exact-size body: %v, %v", got, err)
	}
}

// Context cancellation and deadlines are honoured, and the error matches
// both ErrBreachCheckFailed and the context's error.
func TestBreachPwnedCheckerContext(t *testing.T) {
	release := make(chan struct{})
	srv := newBreachServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			panic(http.ErrAbortHandler) // drop the connection, send nothing
		case <-release:
		}
	})
	defer close(release)
	c := srv.checker(t, PwnedCheckerConfig{})

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Breached(ctx, []byte("tqwz vbkr mplxh"))
	if !errors.Is(err, ErrBreachCheckFailed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}

	ctx, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	_, err = c.Breached(ctx, []byte("tqwz vbkr mplxh"))
	if !errors.Is(err, ErrBreachCheckFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: err = %v", err)
	}

	// Cancellation while the body is being read.
	srv2 := newBreachServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("A", 35)+":1\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel3 := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel3)
	_, err = srv2.checker(t, PwnedCheckerConfig{}).Breached(ctx, []byte("tqwz vbkr mplxh"))
	if !errors.Is(err, ErrBreachCheckFailed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel during body: err = %v", err)
	}
}

// A transport failure (server gone) fails the check without revealing the URL.
func TestBreachPwnedCheckerTransportError(t *testing.T) {
	srv := newBreachServer(t, rangeResponder(""))
	c := srv.checker(t, PwnedCheckerConfig{})
	srv.Close()
	_, err := c.Breached(t.Context(), []byte("tqwz vbkr mplxh"))
	if !errors.Is(err, ErrBreachCheckFailed) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "/range/") {
		t.Fatalf("error %q reveals the request URL", err)
	}
}

// KDF-14 (b) end to end: a Policy with a PwnedChecker rejects a breached
// password, and reports a failed check alongside other violations.
func TestBreachPolicyWithPwnedChecker(t *testing.T) {
	const pw = "tqwz vbkr mplxh"
	_, suffix := breachHashParts(pw)
	srv := newBreachServer(t, rangeResponder(breachPadding(20)+suffix+":12\n"))
	p := policyMust(t, PolicyConfig{BreachChecker: srv.checker(t, PwnedCheckerConfig{})})
	if err := p.Check(t.Context(), []byte(pw), PolicyContext{}); !errors.Is(err, ErrBreached) {
		t.Fatalf("err = %v, want ErrBreached", err)
	}
	if err := p.Check(t.Context(), []byte("correct horse battery staple"), PolicyContext{}); err != nil {
		t.Fatalf("unbreached password rejected: %v", err)
	}

	down := newBreachServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	p = policyMust(t, PolicyConfig{BreachChecker: down.checker(t, PwnedCheckerConfig{})})
	err := p.Check(t.Context(), []byte("password"), PolicyContext{})
	if !errors.Is(err, ErrBreachCheckFailed) || !errors.Is(err, ErrTooShort) || !errors.Is(err, ErrBlocklisted) {
		t.Fatalf("err = %v", err)
	}
}

func TestBreachNewPwnedCheckerConfig(t *testing.T) {
	c, err := NewPwnedChecker(PwnedCheckerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Config()
	if got.BaseURL != DefaultPwnedBaseURL || got.HTTPClient == nil || got.HTTPClient == http.DefaultClient ||
		got.HTTPClient.Timeout != DefaultPwnedTimeout || got.UserAgent != DefaultPwnedUserAgent ||
		got.MinCount != 1 || got.MaxResponseBytes != DefaultPwnedMaxResponseBytes {
		t.Fatalf("defaults = %+v", got)
	}
	if c.rangeBase != "https://api.pwnedpasswords.com/range/" {
		t.Fatalf("rangeBase = %q", c.rangeBase)
	}
	if c, err := NewPwnedChecker(PwnedCheckerConfig{BaseURL: "https://mirror.example/pwned/"}); err != nil || c.rangeBase != "https://mirror.example/pwned/range/" {
		t.Fatalf("mirror: %v", err)
	}
	if _, err := NewPwnedChecker(PwnedCheckerConfig{BaseURL: "http://127.0.0.1:8080", AllowInsecureHTTP: true}); err != nil {
		t.Fatalf("insecure http allowed explicitly: %v", err)
	}
	for _, cfg := range []PwnedCheckerConfig{
		{BaseURL: "http://api.pwnedpasswords.com"},
		{BaseURL: "ftp://x", AllowInsecureHTTP: true},
		{BaseURL: "https://"},
		{BaseURL: "https://x/?q=1"},
		{BaseURL: "https://user:pw@x/"},
		{BaseURL: "https://x/#f"},
		{BaseURL: "::"},
		{MinCount: -1},
		{MaxResponseBytes: -1},
		{MaxResponseBytes: MaxPwnedMaxResponseBytes + 1},
		{UserAgent: "a\r\nX-Injected: 1"},
	} {
		if _, err := NewPwnedChecker(cfg); err == nil {
			t.Errorf("NewPwnedChecker(%+v) accepted", cfg)
		}
	}
	var zero PwnedChecker
	if _, err := zero.Breached(t.Context(), []byte("x")); !errors.Is(err, ErrBreachCheckFailed) {
		t.Fatalf("zero checker: %v", err)
	}
}

// breachReferenceParse is a deliberately simple, independent statement of
// the range-response grammar, used as the fuzzing oracle.
var breachLineRE = regexp.MustCompile(`^[0-9A-Fa-f]{35}:[0-9]{1,19}$`)

func breachReferenceParse(body []byte, suffix string, minCount, maxBytes int64) (bool, bool) {
	if int64(len(body)) > maxBytes {
		return false, false
	}
	found := false
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			continue
		}
		if len(l) > pwnedMaxLineBytes || !breachLineRE.MatchString(l) {
			return false, false
		}
		count, err := strconv.ParseInt(l[36:], 10, 64)
		if err != nil {
			return false, false
		}
		if count > 0 && count >= minCount && strings.EqualFold(l[:35], suffix) {
			found = true
		}
	}
	return found, true
}

// FuzzBreachRangeResponse checks the range-response parser against the
// reference grammar: it never panics, fails only with ErrBreachCheckFailed,
// and accepts exactly the responses the reference accepts, with the same
// answer.
func FuzzBreachRangeResponse(f *testing.F) {
	_, suffix := breachHashParts("P@ssw0rd")
	for _, s := range []string{
		"",
		suffix + ":3",
		suffix + ":0\r\n",
		strings.ToLower(suffix) + ":1\n" + strings.Repeat("A", 35) + ":9\r\n",
		breachPadding(3),
		suffix + ":+3\n",
		suffix + ":99999999999999999999",
		"\n\n\r\n",
		"<html>",
		strings.Repeat("A", 200),
		suffix + ":3\r",
		suffix + ":3\r\r\n",
	} {
		f.Add([]byte(s), int64(1))
	}
	f.Add([]byte(suffix+":5\n"), int64(6))
	f.Fuzz(func(t *testing.T, body []byte, minCount int64) {
		if minCount < 1 {
			minCount = 1
		}
		const maxBytes = 4096
		got, err := parsePwnedRange(bytes.NewReader(body), []byte(suffix), minCount, maxBytes)
		want, ok := breachReferenceParse(body, suffix, minCount, maxBytes)
		if err != nil && !errors.Is(err, ErrBreachCheckFailed) {
			t.Fatalf("error %v does not match ErrBreachCheckFailed", err)
		}
		if (err == nil) != ok {
			t.Fatalf("parser err = %v, reference ok = %v", err, ok)
		}
		if ok && got != want {
			t.Fatalf("parser = %v, reference = %v", got, want)
		}
		if err != nil && got {
			t.Fatal("true with an error")
		}
	})
}
