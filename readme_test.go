package keyhold_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"
)

// readmeGoBlocks returns the ```go code blocks of README.md, each as its
// lines without leading indentation.
func readmeGoBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	in := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case !in && strings.HasPrefix(line, "```go"):
			in, cur = true, nil
		case in && strings.HasPrefix(strings.TrimSpace(line), "```"):
			in = false
			blocks = append(blocks, normaliseCode(cur))
		case in:
			cur = append(cur, line)
		}
	}
	if in {
		t.Fatal("README.md: an unterminated ```go block")
	}
	return blocks
}

// normaliseCode joins lines without their leading indentation and trailing
// blanks, and without blank lines at either end.
func normaliseCode(lines []string) string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, strings.TrimSpace(l))
	}
	return strings.Trim(strings.Join(out, "\n"), "\n")
}

var readmeMarker = regexp.MustCompile(`^\s*// readme:(begin|end) ([a-z0-9-]+)\s*$`)

// readmeRegions returns the regions marked "// readme:begin NAME" …
// "// readme:end NAME" in the root package's Go files, by name.
func readmeRegions(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	regions := map[string]string{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		open, lines := "", []string(nil)
		for n := 1; sc.Scan(); n++ {
			m := readmeMarker.FindStringSubmatch(sc.Text())
			switch {
			case m == nil:
				if open != "" {
					lines = append(lines, sc.Text())
				}
			case m[1] == "begin" && open == "":
				open, lines = m[2], nil
			case m[1] == "end" && m[2] == open:
				if _, dup := regions[open]; dup {
					t.Fatalf("%s:%d: region %q marked twice", name, n, open)
				}
				regions[open], open = normaliseCode(lines), ""
			default:
				t.Fatalf("%s:%d: unbalanced readme marker %q", name, n, sc.Text())
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if open != "" {
			t.Fatalf("%s: region %q is not closed", name, open)
		}
	}
	return regions
}

// Issue 11: every Go block of the README is code that compiles and runs in
// these tests (a marked region of readme_code_test.go), and every marked
// region is shown, so the README cannot drift from the code.
func TestReadmeBlocksAreTestedCode(t *testing.T) {
	blocks, regions := readmeGoBlocks(t), readmeRegions(t)
	if len(blocks) < 5 || len(regions) < 5 {
		t.Fatalf("found %d README blocks and %d regions: the parser is broken", len(blocks), len(regions))
	}
	shown := map[string]bool{}
	for i, b := range blocks {
		found := false
		for name, r := range regions {
			if r == b {
				shown[name], found = true, true
			}
		}
		if !found {
			first, _, _ := strings.Cut(b, "\n")
			t.Errorf("README.md Go block %d (%q…) is no region of readme_code_test.go", i+1, first)
		}
	}
	for name := range regions {
		if !shown[name] {
			t.Errorf("region %q of the tested code is not in README.md", name)
		}
	}
}

// The quick start's sign-up and login, for a weak password, a right one, a
// wrong one, an unknown name and a hash made under older parameters.
func TestReadmeQuickStart(t *testing.T) {
	ctx := context.Background()
	var k readmeKDF
	if err := readmeSetup(&k); err != nil {
		t.Fatal(err)
	}
	hasher, policy := k.hasher, k.policy
	hashes := map[string]string{}
	password := []byte("velvet otter learns calculus")

	var pe *kdf.PolicyError
	if err := readmeSignUp(ctx, hasher, policy, hashes, "ann", []byte("password1")); !errors.As(err, &pe) || !errors.Is(err, kdf.ErrTooShort) {
		t.Fatalf("weak password: %v, want a *kdf.PolicyError matching ErrTooShort", err)
	}
	if err := readmeSignUp(ctx, hasher, policy, hashes, "ann", password); err != nil {
		t.Fatal(err)
	}
	if err := readmeLogin(ctx, hasher, hashes, "ann", password); err != nil {
		t.Fatalf("right password: %v", err)
	}
	for _, c := range []struct{ name, password string }{{"ann", "velvet otter learns algebra"}, {"bob", string(password)}} {
		if err := readmeLogin(ctx, hasher, hashes, c.name, []byte(c.password)); !errors.Is(err, errBadLogin) {
			t.Fatalf("login %s: %v, want errBadLogin", c.name, err)
		}
	}

	// A hash at other parameters is replaced by one at the current ones.
	old, err := kdf.New(kdf.Config{Params: kdf.Params{Algorithm: kdf.Argon2id, Time: 3, MemoryKiB: kdf.MinArgon2MemoryKiB, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		t.Fatal(err)
	}
	if hashes["ann"], err = old.Hash(ctx, password); err != nil {
		t.Fatal(err)
	}
	before := hashes["ann"]
	if err := readmeLogin(ctx, hasher, hashes, "ann", password); err != nil {
		t.Fatal(err)
	}
	if hashes["ann"] == before || !strings.HasPrefix(hashes["ann"], "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("the hash was not upgraded: %.35s…", hashes["ann"])
	}
}

// The vault snippet runs twice on the same database file (the second run
// finds vault.ErrExists and unlocks), and fails cleanly with a wrong
// passphrase.
func TestReadmeVaultRunsTwice(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx := context.Background()
	var k readmeKDF
	if err := readmeSetup(&k); err != nil {
		t.Fatal(err)
	}
	hasher := k.hasher
	passphrase := []byte("velvet otter learns calculus")
	for run := 1; run <= 2; run++ {
		if err := readmeVault(ctx, hasher, "user-1", passphrase, []byte("hello")); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	if err := readmeVault(ctx, hasher, "user-1", []byte("velvet otter learns algebra"), []byte("hello")); !errors.Is(err, vault.ErrUnlockFailed) {
		t.Fatalf("wrong passphrase: %v, want vault.ErrUnlockFailed", err)
	}
}

func readmeStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "keyhold.db"), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// readmeClient returns a client with a cookie jar, as a browser.
func readmeClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// The sessions snippet on plain HTTP at 127.0.0.1, as a developer runs it:
// the login sets a cookie, and the next request opens the vault.
func TestReadmeSessionsOnPlainHTTPLoopback(t *testing.T) {
	ctx := context.Background()
	store := readmeStore(t)
	var k readmeKDF
	if err := readmeSetup(&k); err != nil {
		t.Fatal(err)
	}
	hasher := k.hasher
	v, err := vault.New(store, vault.Config{Hasher: hasher})
	if err != nil {
		t.Fatal(err)
	}
	passphrase := "velvet otter learns calculus"
	u, err := v.Create(ctx, "user-1", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	u.Lock()
	var handler http.Handler
	if err := readmeSessions(store, v, &handler); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler) // http://127.0.0.1:…
	defer srv.Close()
	c := readmeClient(t)

	resp, err := c.Get(srv.URL + "/notes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /notes before login: %d, want 401", resp.StatusCode)
	}
	if resp := postForm(t, c, srv.URL+"/login", url.Values{"user": {"user-1"}, "passphrase": {"velvet otter learns algebra"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong passphrase: %d, want 401", resp.StatusCode)
	}
	resp, err = c.PostForm(srv.URL+"/login", url.Values{"user": {"user-1"}, "passphrase": {passphrase}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/notes" || string(body) != "notes of user-1\n" {
		t.Fatalf("login then /notes: %d at %s, %q", resp.StatusCode, resp.Request.URL.Path, body)
	}
}

// The brute-force snippet: a right password logs in and remembers the
// device; ten wrong ones from an address lock the name there, after which
// even the right password gets the wrong password's answer (and no panic);
// the per-address limit answers 429.
func TestReadmeBruteForce(t *testing.T) {
	store := readmeStore(t)
	var k readmeKDF
	if err := readmeSetup(&k); err != nil {
		t.Fatal(err)
	}
	hasher := k.hasher
	password := "velvet otter learns calculus"
	stored, err := hasher.Hash(context.Background(), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	checkPassword := func(ctx context.Context, name string, password []byte) error {
		if name != "ann" {
			return hasher.VerifyDummy(ctx, password)
		}
		_, err := hasher.Verify(ctx, stored, password)
		return err
	}
	deviceKey := make([]byte, 32)
	rand.Read(deviceKey)
	mux := http.NewServeMux()
	var login http.Handler
	if err := readmeBruteForce(mux, store, hasher, nil, deviceKey, checkPassword, &login); err != nil {
		t.Fatal(err)
	}
	attempt := func(h http.Handler, from, name, password string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"name": {name}, "password": {password}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = from + ":1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	w := attempt(login, "192.0.2.1", "ann", password)
	if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Set-Cookie"), "keyhold-device=") {
		t.Fatalf("right password: %d, Set-Cookie %q", w.Code, w.Header().Get("Set-Cookie"))
	}
	for i := range 10 {
		if w := attempt(login, "192.0.2.2", "ann", "wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, w.Code)
		}
	}
	if w := attempt(login, "192.0.2.2", "ann", password); w.Code != http.StatusUnauthorized {
		t.Fatalf("right password while locked: %d, want 401", w.Code)
	}
	if w := attempt(login, "192.0.2.3", "ann", password); w.Code != http.StatusOK {
		t.Fatalf("right password from another address: %d, want 200", w.Code)
	}

	for i := range 5 {
		if w := attempt(mux, "198.51.100.1", "nobody", "wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d through the limit: %d, want 401", i+1, w.Code)
		}
	}
	if w := attempt(mux, "198.51.100.1", "nobody", "wrong"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("sixth attempt: %d, Retry-After %q; want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
}
