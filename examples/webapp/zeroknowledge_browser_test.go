package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/browsertest"
	"github.com/keyhold/keyhold/internal/testenv"
)

// The private notes of TestZeroKnowledgeNotesBrowser: what the server
// must never see.
const (
	zkPassphrase  = "glacier Whistle 42 quietly orbits!"
	zkPassphrase2 = "seven Lanterns drift over 9 fjords?"
	zkTitle1      = "Bank vault combination"
	zkBody1       = "left 31, right 7, left 22 (keep it quiet)"
	zkTitle1b     = "Safe deposit combination"
	zkBody1b      = "left 44, right 3, left 18 — changed on Tuesday"
	zkTitle2      = "Mariposa surprise party"
	zkBody2       = "Saturday at the boathouse; don't tell Oskar"
)

// zkWalk is the browser's part of TestZeroKnowledgeNotesBrowser: a new
// user signs up, opens Private notes, creates a vault with a passphrase,
// saves the recovery key shown, stores two notes, reloads (locked),
// unlocks with the passphrase, edits a note; adds a passkey with PRF on
// the passkeys page (server-side mode), lets it unlock the private vault,
// reloads, unlocks with it; in a second browser context (a fresh
// profile: no storage) logs in, unlocks with the recovery key (a new one
// is shown), deletes a note, changes the passphrase, locks and unlocks
// with the new one. Every request of both contexts is recorded (URL,
// headers, body), with the phase of the walk it belongs to.
const zkWalk = `
const o = arg.origin;
const out = {};
const shot = async (p, name) => { if (arg.shots) await p.screenshot({ path: arg.shots + '/zk-' + name + '.png', fullPage: true }); };
const fits = async (p) => p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
const phone = async (p, name) => {
  await p.setViewportSize({ width: 390, height: 844 });
  const ok = await fits(p);
  await shot(p, name + '-390');
  await p.setViewportSize({ width: 1280, height: 800 });
  return ok;
};
const visible = (p, sel) => p.waitForSelector(sel, { state: 'visible' });
const notice = (p, text) => p.waitForFunction((t) => document.getElementById('zk-notice').textContent.includes(t), text);
const titles = (p) => p.$$eval('#zk-notes article.note h2', (els) => els.map((e) => e.textContent));
const count = (p, n) => p.waitForFunction((n) => document.querySelectorAll('#zk-notes article.note').length === n, n);
const note = (p, title) => p.locator('#zk-notes article.note', { has: p.locator('h2', { hasText: title }) });
const addNote = async (p, title, body) => {
  const n = await p.locator('#zk-notes article.note').count();
  await p.fill('#zk-add-title', title);
  await p.fill('#zk-add-body', body);
  await p.click('#zk-add-form button');
  await count(p, n + 1);
};

// Every request of a context, with the walk's phase.
globalThis.zkRecorded = [];
globalThis.zkPending = [];
globalThis.zkPhase = 'signup';
const record = (ctx, who) => ctx.on('request', (r) => {
  const e = { who, phase: globalThis.zkPhase, method: r.method(), url: r.url(), headers: r.headers(), body: '' };
  const b = r.postDataBuffer();
  if (b) e.body = b.toString('base64');
  globalThis.zkRecorded.push(e);
  globalThis.zkPending.push(Promise.race([r.allHeaders(), new Promise((res) => setTimeout(() => res(null), 5000))])
    .then((h) => { if (h) e.headers = h; }, () => {}));
});
record(context, 'A');

await page.goto(o + '/signup');
await page.fill('input[name=username]', 'zoe');
await page.fill('input[name=password]', arg.password);
await Promise.all([page.waitForURL('**/recovery-keys'), page.click('main button')]);
await Promise.all([page.waitForURL('**/notes'), page.click('text=I have saved them')]);
out.navLink = await page.locator('header nav a[href="/private-notes"]').count();

globalThis.zkPhase = 'private';
await Promise.all([page.waitForURL('**/private-notes'), page.click('main a[href="/private-notes"]')]);
await visible(page, '#zk-create');
out.createText = await page.textContent('#zk-create');
await shot(page, 'create');
out.fitsCreate = await phone(page, 'create');
await page.fill('#zk-create-pass', arg.passphrase);
await page.fill('#zk-create-pass2', arg.passphrase);
await page.click('#zk-create-form button');
await visible(page, '#zk-recovery');
out.recoveryKey = (await page.textContent('#zk-recovery-key')).trim();
await shot(page, 'recovery');
out.fitsRecovery = await phone(page, 'recovery');
await page.click('#zk-recovery-done');
await visible(page, '#zk-open');
out.fpCreated = await page.textContent('#zk-fingerprint');
await addNote(page, arg.title1, arg.body1);
await addNote(page, arg.title2, arg.body2);
out.names = await page.$$eval('#zk-notes article.note', (els) => Object.fromEntries(els.map((e) => [e.querySelector('h2').textContent, e.dataset.name])));

await page.reload();
await visible(page, '#zk-unlock');
out.afterReload = await page.textContent('main');
await shot(page, 'unlock');
out.fitsUnlock = await phone(page, 'unlock');
await page.fill('#zk-unlock-pass', arg.wrong);
await page.click('#zk-unlock-form button');
await page.waitForSelector('#zk-error:not([hidden])');
out.wrongPassphrase = await page.textContent('#zk-error');
await page.fill('#zk-unlock-pass', arg.passphrase);
await page.click('#zk-unlock-form button');
await count(page, 2);
out.afterUnlock = await titles(page);
const n1 = note(page, arg.title1);
await n1.locator('summary').click();
await n1.locator('form input').fill(arg.title1b);
await n1.locator('form textarea').fill(arg.body1b);
await n1.locator('form button').click();
await page.waitForFunction((t) => [...document.querySelectorAll('#zk-notes h2')].some((h) => h.textContent === t), arg.title1b);
out.afterEdit = await titles(page);
await shot(page, 'open');
out.fitsOpen = await phone(page, 'open');

// A passkey on the passkeys page: the server-side mode (its registration
// sends the PRF output of the server's salt, which unlocks the server-side
// vault).
globalThis.zkPhase = 'passkeys';
await page.goto(o + '/passkeys/add');
await page.fill('#passkey-add input[name=name]', 'Laptop');
await Promise.all([page.waitForURL('**/passkeys?added=1'), page.click('#passkey-add button')]);
out.added = await page.textContent('main');

globalThis.zkPhase = 'private';
await page.goto(o + '/private-notes');
await visible(page, '#zk-passkey-unlock');
await page.fill('#zk-unlock-pass', arg.passphrase);
await page.click('#zk-unlock-form button');
await count(page, 2);
await page.click('summary:has-text("Let a passkey unlock it")');
await page.click('#zk-passkey-add');
await notice(page, 'now unlocks');
await page.reload();
await visible(page, '#zk-passkey-unlock');
await page.click('#zk-passkey-unlock');
await count(page, 2);
out.afterPasskey = await titles(page);
out.fpA = await page.textContent('#zk-fingerprint');
out.credentials = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.map((c) => c.credentialId);

// Another browser profile: logs in, unlocks with the recovery key.
const b = await browser.newContext();
record(b, 'B');
out.consoleB = [];
b.on('console', (m) => { if (m.type() === 'error') out.consoleB.push(m.text() + ' (' + ((m.location() || {}).url || '') + ')'); });
b.on('weberror', (e) => out.consoleB.push('pageerror: ' + String(e.error())));
b.on('response', (r) => { if (r.status() >= 500) out.consoleB.push('http ' + r.status() + ' ' + r.url()); });
const pb = await b.newPage();
globalThis.zkPhase = 'login';
await pb.goto(o + '/login');
await pb.fill('input[name=username]', 'zoe');
await pb.fill('input[name=password]', arg.password);
await Promise.all([pb.waitForURL('**/notes'), pb.click('form[action="/login"] button')]);
globalThis.zkPhase = 'private';
await pb.goto(o + '/private-notes');
await visible(pb, '#zk-unlock');
await pb.click('summary:has-text("Use your recovery key")');
await pb.fill('#zk-recovery-input', out.recoveryKey.toLowerCase());
await pb.click('#zk-recovery-form button');
await visible(pb, '#zk-recovery');
out.recoveryWhy = await pb.textContent('#zk-recovery-why');
out.newRecoveryKey = (await pb.textContent('#zk-recovery-key')).trim();
await pb.click('#zk-recovery-done');
await count(pb, 2);
out.afterRecovery = await titles(pb);
out.fpB = await pb.textContent('#zk-fingerprint');
await note(pb, arg.title2).locator('button.danger').click();
await count(pb, 1);
out.afterDelete = await titles(pb);
await pb.click('summary:has-text("Change passphrase")');
await pb.fill('#zk-change-pass', arg.passphrase2);
await pb.fill('#zk-change-pass2', arg.passphrase2);
await pb.click('#zk-change-form button');
await notice(pb, 'passphrase is changed');
await pb.click('#zk-lock');
await visible(pb, '#zk-unlock');
out.afterLock = await pb.textContent('main');
await pb.fill('#zk-unlock-pass', arg.passphrase2);
await pb.click('#zk-unlock-form button');
await count(pb, 1);
out.afterNewPassphrase = await titles(pb);
await b.close();
return out;
`

// zkRollback goes on from zkWalk once the test has put the first
// version of the edited note back in the store: the browser that saw its
// second version unlocks and is warned.
const zkRollback = `
globalThis.zkPhase = 'rollback';
await page.reload();
await page.waitForSelector('#zk-unlock', { state: 'visible' });
await page.fill('#zk-unlock-pass', arg.passphrase2);
await page.click('#zk-unlock-form button');
await page.waitForSelector('#zk-error:not([hidden])');
const out = { error: await page.textContent('#zk-error'), shown: await page.textContent('#zk-notes') };
if (arg.shots) await page.screenshot({ path: arg.shots + '/zk-rollback.png', fullPage: true });
await Promise.all(globalThis.zkPending);
out.requests = globalThis.zkRecorded;
return out;
`

// seenRequest is a request the Go server received, or one the browser
// sent (Who "A" or "B": the browser context; Phase: the walk's step).
type seenRequest struct {
	Who, Phase, Method, URL string
	Header                  http.Header
	Body                    []byte
	Status                  int
}

// requestLog records every request the server receives, with its body
// and the status answered.
type requestLog struct {
	mu   sync.Mutex
	reqs []*seenRequest
}

type statusWriter struct {
	http.ResponseWriter
	status *int
}

func (w statusWriter) WriteHeader(code int) {
	if *w.status == 0 {
		*w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w statusWriter) Write(b []byte) (int, error) {
	if *w.status == 0 {
		*w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (l *requestLog) wrap(h func() http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			http.Error(w, "test: reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		seen := &seenRequest{Who: "server", Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(), Body: body}
		l.mu.Lock()
		l.reqs = append(l.reqs, seen)
		l.mu.Unlock()
		var status int
		h().ServeHTTP(statusWriter{w, &status}, r)
		l.mu.Lock()
		seen.Status = status
		l.mu.Unlock()
	})
}

func (l *requestLog) all() []*seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*seenRequest(nil), l.reqs...)
}

// TestZeroKnowledgeNotesBrowser walks the private-notes page in chromium
// (internal/browsertest; skipped without chromium and playwright-core,
// failed without them in CI), recording every request the browser sends
// and every request the server receives, then checks the zero-knowledge
// claim on them and on the SQLite files: no passphrase, recovery key,
// note text or master key in any encoding, no PRF output in a request of
// the private-notes flows, and no 32-byte value sent that opens the
// passkey's zero-knowledge slot. The master key is recomputed here from
// FORMAT.md §3.1 and §3.2 alone (and shown to open the notes and give the
// page's fingerprint, §3.7), not through package vault. Set
// KEYHOLD_WEBAPP_SCREENSHOTS to a directory to keep screenshots.
func TestZeroKnowledgeNotesBrowser(t *testing.T) {
	if testing.Short() || !testenv.Long() {
		t.Skip("a browser walk of the private notes: long mode only (" + testenv.LongEnv + "=1, as in .ci/run), never with -short, to keep go test ./... " +
			"within two minutes; TestPagesFitAPhone and passkey.TestBrowserPasskey run a real browser meanwhile")
	}
	t.Parallel() // its own app, database, browser and port: the two walks overlap
	start := time.Now()
	served := &requestLog{}
	origin, dbPath, logs := browserApp(t, served.wrap)

	s := browsertest.Start(t, browsertest.Options{Timeout: 170 * time.Second, ActionTimeout: 20 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 160*time.Second)
	defer cancel()
	arg := map[string]any{"origin": origin, "password": password, "shots": os.Getenv("KEYHOLD_WEBAPP_SCREENSHOTS"),
		"passphrase": zkPassphrase, "passphrase2": zkPassphrase2, "wrong": zkPassphrase + "x",
		"title1": zkTitle1, "body1": zkBody1, "title1b": zkTitle1b, "body1b": zkBody1b, "title2": zkTitle2, "body2": zkBody2}
	raw, err := s.Eval(ctx, zkWalk, arg)
	if err != nil {
		t.Fatalf("%v\napp log:\n%s", err, logs)
	}
	var got struct {
		CreateText, RecoveryKey, NewRecoveryKey, RecoveryWhy, FpCreated, FpA, FpB string
		AfterReload, WrongPassphrase, Added, AfterLock                            string
		AfterUnlock, AfterEdit, AfterPasskey, AfterRecovery, AfterDelete          []string
		AfterNewPassphrase, Credentials, ConsoleB                                 []string
		Names                                                                     map[string]string
		NavLink                                                                   int
		FitsCreate, FitsRecovery, FitsUnlock, FitsOpen                            bool
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	check := func(what string, ok bool, detail any) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %v", what, detail)
		}
	}
	same := func(a []string, b ...string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
	check("the header links to the private notes", got.NavLink == 1, got.NavLink)
	check("the create form's policy", strings.Contains(got.CreateText, "At least 15 characters") &&
		strings.Contains(got.CreateText, "must differ from your login password") && strings.Contains(got.CreateText, "cannot reset it"), got.CreateText)
	check("a recovery key shown", recoveryKey.MatchString(got.RecoveryKey), got.RecoveryKey)
	check("locked after a reload", !strings.Contains(got.AfterReload, zkTitle1) && !strings.Contains(got.AfterReload, zkTitle2), got.AfterReload)
	check("a wrong passphrase", strings.Contains(got.WrongPassphrase, "did not unlock"), got.WrongPassphrase)
	check("unlocked with the passphrase", same(got.AfterUnlock, zkTitle2, zkTitle1), got.AfterUnlock)
	check("edited", same(got.AfterEdit, zkTitle2, zkTitle1b), got.AfterEdit)
	check("passkey added on the passkeys page", strings.Contains(got.Added, "Laptop") && strings.Contains(got.Added, "unlocks your notes"), got.Added)
	check("unlocked with the passkey", same(got.AfterPasskey, zkTitle2, zkTitle1b), got.AfterPasskey)
	check("unlocked with the recovery key", same(got.AfterRecovery, zkTitle2, zkTitle1b), got.AfterRecovery)
	check("a new recovery key after using one", recoveryKey.MatchString(got.NewRecoveryKey) && got.NewRecoveryKey != got.RecoveryKey &&
		strings.Contains(got.RecoveryWhy, "no longer works"), got.NewRecoveryKey+" "+got.RecoveryWhy)
	check("a fingerprint", regexp.MustCompile(`^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$`).MatchString(got.FpA), got.FpA)
	check("the same fingerprint on both browsers", got.FpA == got.FpB && got.FpA == got.FpCreated, got.FpCreated+" "+got.FpA+" "+got.FpB)
	check("deleted", same(got.AfterDelete, zkTitle1b), got.AfterDelete)
	check("locked", !strings.Contains(got.AfterLock, zkTitle1b) && strings.Contains(got.AfterLock, "Locked"), got.AfterLock)
	check("unlocked with the new passphrase", same(got.AfterNewPassphrase, zkTitle1b), got.AfterNewPassphrase)
	check("the pages fit 390 px", got.FitsCreate && got.FitsRecovery && got.FitsUnlock && got.FitsOpen,
		fmt.Sprint(got.FitsCreate, got.FitsRecovery, got.FitsUnlock, got.FitsOpen))
	check("one credential on the authenticator", len(got.Credentials) == 1, got.Credentials)
	if t.Failed() {
		t.FailNow()
	}

	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=rw&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var userID string
	if err := db.QueryRow("SELECT id FROM users WHERE username = 'zoe'").Scan(&userID); err != nil {
		t.Fatal(err)
	}

	// The server puts back the first version of the edited note (the body
	// the browser sent when it created it): the browser that saw the
	// second one refuses it and says so.
	name1 := got.Names[zkTitle1]
	var v1 []byte
	for _, r := range served.all() {
		if r.Method == "PUT" && r.URL == "/zk/records/"+name1 && v1 == nil {
			v1 = r.Body
		}
	}
	if len(v1) < 42 || binary.BigEndian.Uint64(v1[6:14]) != 1 {
		t.Fatalf("no first version of %s was sent", name1)
	}
	if res, err := db.Exec("UPDATE keyhold_blobs SET data = ?, version = 1 WHERE user_id = ? AND name = ?", v1, []byte(userID), []byte(name1)); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d rows of %s put back", n, name1)
	}
	raw, err = s.Eval(ctx, zkRollback, arg)
	if err != nil {
		t.Fatalf("%v\napp log:\n%s", err, logs)
	}
	var rb struct {
		Error, Shown string
		Requests     []struct {
			Who, Phase, Method, URL, Body string
			Headers                       map[string]string
		}
	}
	if err := json.Unmarshal(raw, &rb); err != nil {
		t.Fatal(err)
	}
	check("rollback warned of", strings.Contains(rb.Error, "older version") && !strings.Contains(rb.Shown, zkTitle1), rb.Error+" | "+rb.Shown)

	// Everything that crossed the wire, both as the browser sent it and
	// as the server received it.
	var sent []*seenRequest
	for _, r := range rb.Requests {
		body, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		hdr := http.Header{}
		for k, v := range r.Headers {
			hdr.Add(k, v)
		}
		sent = append(sent, &seenRequest{Who: r.Who, Phase: r.Phase, Method: r.Method, URL: r.URL, Header: hdr, Body: body})
	}
	received := served.all()
	reqs := append(append([]*seenRequest(nil), sent...), received...)
	privateSent := 0
	for _, r := range sent {
		if r.Phase == "private" && strings.Contains(r.URL, "/zk/") {
			privateSent++
		}
	}
	check("requests recorded in the browser", privateSent > 20 && len(sent) > 50, fmt.Sprint(privateSent, len(sent)))
	for _, r := range received {
		if r.Status >= 500 {
			t.Errorf("server answered %d to %s %s", r.Status, r.Method, r.URL)
		}
	}

	// The master key, from the vault record in the blob store and the
	// (current) passphrase, by FORMAT.md §3.1 and §3.2.
	var zkRecord []byte
	if err := db.QueryRow("SELECT data FROM keyhold_blobs WHERE user_id = ? AND name = ?", []byte(userID), []byte("/vault")).Scan(&zkRecord); err != nil {
		t.Fatal(err)
	}
	zkVault, err := parseVaultRecord(zkRecord)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := zkVault.passphraseKey([]byte(userID), zkPassphrase2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zkVault.passphraseKey([]byte(userID), zkPassphrase); err == nil {
		t.Error("the old passphrase still opens the vault")
	}
	// Not vacuous: the key opens the notes left (the first version of the
	// first note, put back) and gives the fingerprint the pages showed.
	rows, err := db.Query("SELECT CAST(name AS TEXT), data FROM keyhold_blobs WHERE user_id = ? AND name <> ? AND length(data) > 0", []byte(userID), []byte("/vault"))
	if err != nil {
		t.Fatal(err)
	}
	opened := map[string]string{}
	for rows.Next() {
		var name string
		var data []byte
		if err := rows.Scan(&name, &data); err != nil {
			t.Fatal(err)
		}
		p, err := openRecord(mk, []byte(userID), "keyhold/zk/record/"+name, data)
		if err != nil {
			t.Errorf("the master key does not open %s: %v", name, err)
			continue
		}
		var n struct{ Title, Body string }
		if err := json.Unmarshal(p, &n); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		opened[n.Title] = n.Body
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	check("the master key opens the note left", len(opened) == 1 && opened[zkTitle1] == zkBody1, opened)
	check("the master key gives the fingerprint shown", fingerprint(mk, []byte(userID), zkVault.keyVersion) == got.FpA, fingerprint(mk, []byte(userID), zkVault.keyVersion))

	// The secrets, and how they could be written.
	rk1, err := parseRecoveryKeyText(got.RecoveryKey)
	if err != nil {
		t.Fatal(err)
	}
	rk2, err := parseRecoveryKeyText(got.NewRecoveryKey)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"passphrase": []byte(zkPassphrase), "new passphrase": []byte(zkPassphrase2),
		"recovery key": []byte(got.RecoveryKey), "new recovery key": []byte(got.NewRecoveryKey),
		"recovery key without dashes":     []byte(strings.ReplaceAll(got.RecoveryKey, "-", "")),
		"new recovery key without dashes": []byte(strings.ReplaceAll(got.NewRecoveryKey, "-", "")),
		"recovery key bytes":              rk1, "new recovery key bytes": rk2,
		"master key": mk,
	}
	for i, s := range []string{zkTitle1, zkBody1, zkTitle1b, zkBody1b, zkTitle2, zkBody2} {
		secrets[fmt.Sprintf("note text %d", i)] = []byte(s)
	}
	needles := map[string][]byte{}
	for what, s := range secrets {
		for how, v := range encodings(s) {
			needles[what+" ("+how+")"] = v
		}
	}

	// The haystacks: each request (URL, headers, body), with every
	// base64, base64url and hex token in it decoded; the SQLite files;
	// the app's log.
	type haystack struct {
		where string
		data  [][]byte
	}
	var stacks []haystack
	var searched int
	for i, r := range reqs {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL)
		if u, err := url.PathUnescape(r.URL); err == nil {
			fmt.Fprintf(&b, "%s\n", u)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			}
		}
		b.Write(r.Body)
		data := append([][]byte{b.Bytes()}, decodedTokens(b.Bytes())...)
		if u, err := url.QueryUnescape(string(r.Body)); err == nil {
			data = append(data, []byte(u))
		}
		stacks = append(stacks, haystack{fmt.Sprintf("request %d (%s %s %s %s)", i, r.Who, r.Phase, r.Method, r.URL), data})
	}
	files := 0
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(dbPath + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		files++
		stacks = append(stacks, haystack{"the database file " + filepath.Base(dbPath+suffix), [][]byte{b}})
	}
	check("database files", files >= 2, files)
	stacks = append(stacks, haystack{"the app's log", [][]byte{[]byte(logs.String())}})
	for _, st := range stacks {
		found := map[string]bool{}
		for _, d := range st.data {
			searched += len(d)
			for what, n := range needles {
				if !found[what] && bytes.Contains(d, n) {
					found[what] = true
					t.Errorf("%s holds the %s", st.where, what)
				}
			}
		}
	}

	// No PRF output in any request body but the server-side passkey
	// registration's (the server-side mode: the output for the server's
	// own salt, FORMAT.md §7.3).
	registrations := 0
	for _, r := range reqs {
		var v any
		if json.Unmarshal(r.Body, &v) != nil {
			continue
		}
		if !hasPRFResults(v) {
			continue
		}
		if path, _, _ := strings.Cut(strings.TrimPrefix(r.URL, origin), "?"); path == "/passkey/register/finish" && r.Phase != "private" {
			registrations++
			continue
		}
		t.Errorf("a PRF output in a request body: %s %s %s %s", r.Who, r.Phase, r.Method, r.URL)
	}
	check("the server-side registration sent its PRF output (browser and server side)", registrations == 2, registrations)

	// The passkey's zero-knowledge slot opens with no 32-byte value of any
	// request; the same search finds the secret of its server-side slot
	// (sent at registration), so it would find this one if it were sent.
	credID, err := base64.StdEncoding.DecodeString(got.Credentials[0])
	if err != nil {
		t.Fatal(err)
	}
	var serverRecord []byte
	if err := db.QueryRow("SELECT data FROM keyhold_vaults WHERE user_id = ?", []byte(userID)).Scan(&serverRecord); err != nil {
		t.Fatal(err)
	}
	serverVault, err := parseVaultRecord(serverRecord)
	if err != nil {
		t.Fatal(err)
	}
	zkSlot, ok := zkVault.secretSlot(credID)
	check("the private vault has the passkey's slot", ok, "")
	serverSlot, ok := serverVault.secretSlot(credID)
	check("the server-side vault has the passkey's slot", ok, "")
	if t.Failed() {
		t.FailNow()
	}
	candidates := map[[32]byte]bool{}
	for _, st := range stacks[:len(reqs)] {
		for _, d := range st.data {
			for i := 0; i+32 <= len(d); i++ {
				candidates[[32]byte(d[i:i+32])] = true
			}
		}
	}
	zkOpens, serverOpens := 0, 0
	for c := range candidates {
		if _, err := zkVault.openSecretSlot(zkSlot, []byte(userID), credID, c[:]); err == nil {
			zkOpens++
		}
		if _, err := serverVault.openSecretSlot(serverSlot, []byte(userID), credID, c[:]); err == nil {
			serverOpens++
		}
	}
	check("no value sent opens the passkey's zero-knowledge slot", zkOpens == 0, zkOpens)
	check("the server-side slot opens with the PRF output sent at registration", serverOpens == 1, serverOpens)

	for _, m := range s.Console() {
		if m.Level == "error" && strings.Contains(m.Text, "status of 404") && regexp.MustCompile(`/zk/records/n-[0-9a-f]{32}$`).MatchString(m.URL) {
			continue // a new note's name, whose version the client asks for first
		}
		if m.Level == "error" || m.Level == "pageerror" || m.Level == "http" {
			t.Errorf("browser console: %s", m)
		}
	}
	for _, m := range got.ConsoleB {
		t.Errorf("second browser's console: %s", m)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("an error was logged:\n%s", logs)
	}
	t.Logf("%d requests recorded in the browser (%d to /zk/ in the private-notes steps), %d received by the server; "+
		"%d needles searched for in %d bytes (requests with their decoded tokens, %d database files, the log); "+
		"%d 32-byte values sent tried on the passkey's slots; %v",
		len(sent), privateSent, len(received), len(needles), searched, files, len(candidates), time.Since(start).Round(time.Millisecond))
}

// encodings returns s as the page or a server could carry it: raw, hex,
// base64 and base64url at each alignment within a longer encoded string,
// URL-encoded, JSON-escaped.
func encodings(s []byte) map[string][]byte {
	out := map[string][]byte{
		"raw":       s,
		"hex":       []byte(hex.EncodeToString(s)),
		"HEX":       []byte(strings.ToUpper(hex.EncodeToString(s))),
		"query":     []byte(url.QueryEscape(string(s))),
		"path":      []byte(url.PathEscape(string(s))),
		"JSON":      bytes.Trim(must(json.Marshal(string(s))), `"`),
		"lowercase": bytes.ToLower(s),
	}
	for k := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), s...))
		// The characters that s alone determines, wherever it starts.
		from, to := (8*k+5)/6, 8*(k+len(s))/6
		out[fmt.Sprintf("base64 %d", k)] = []byte(enc[from:to])
		out[fmt.Sprintf("base64url %d", k)] = []byte(strings.NewReplacer("+", "-", "/", "_").Replace(enc[from:to]))
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var (
	b64Token = regexp.MustCompile(`[A-Za-z0-9+/_-]{16,}={0,2}`)
	hexToken = regexp.MustCompile(`[0-9a-fA-F]{32,}`)
)

// decodedTokens returns the bytes of every base64, base64url and hex
// token of b (and of its URL-decoded form).
func decodedTokens(b []byte) [][]byte {
	var out [][]byte
	texts := [][]byte{b}
	if u, err := url.QueryUnescape(string(b)); err == nil && u != string(b) {
		texts = append(texts, []byte(u))
	}
	for _, text := range texts {
		for _, tok := range b64Token.FindAll(text, -1) {
			t := strings.TrimRight(string(tok), "=")
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				// Each offset: a token may start inside a longer run.
				for off := 0; off < 4 && off < len(t); off++ {
					u := t[off:]
					if len(u)%4 == 1 {
						u = u[:len(u)-1]
					}
					if d, err := enc.DecodeString(u); err == nil {
						out = append(out, d)
					}
				}
			}
		}
		for _, tok := range hexToken.FindAll(text, -1) {
			for off := 0; off < 2; off++ {
				u := tok[off:]
				if d, err := hex.DecodeString(string(u[:len(u)/2*2])); err == nil {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// hasPRFResults reports a "results" member in a "prf" object anywhere in
// a JSON value.
func hasPRFResults(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if p, ok := e.(map[string]any); ok && k == "prf" {
				if _, ok := p["results"]; ok {
					return true
				}
			}
			if hasPRFResults(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasPRFResults(e) {
				return true
			}
		}
	}
	return false
}

// A vault record (FORMAT.md §3.1), parsed here by the test itself.
type testVault struct {
	keyVersion uint32
	slots      []testSlot
}

type testSlot struct {
	kind       byte
	id         []byte
	keyVersion uint32
	params     []byte
	wrapped    []byte
}

func parseVaultRecord(b []byte) (*testVault, error) {
	bad := errors.New("not a vault record")
	if len(b) < 9 || string(b[:4]) != "KHV\x01" {
		return nil, bad
	}
	v := &testVault{keyVersion: binary.BigEndian.Uint32(b[4:8])}
	n, p := int(b[8]), b[9:]
	take := func(k int) []byte {
		if len(p) < k {
			return nil
		}
		out := p[:k]
		p = p[k:]
		return out
	}
	for range n {
		h := take(1 + 16 + 4 + 2)
		if h == nil {
			return nil, bad
		}
		s := testSlot{kind: h[0], id: h[1:17], keyVersion: binary.BigEndian.Uint32(h[17:21])}
		s.params = take(int(binary.BigEndian.Uint16(h[21:23])))
		l := take(2)
		if s.params == nil || l == nil {
			return nil, bad
		}
		if s.wrapped = take(int(binary.BigEndian.Uint16(l))); s.wrapped == nil {
			return nil, bad
		}
		v.slots = append(v.slots, s)
	}
	return v, nil
}

// slotAAD is §3.1's slot associated data.
func slotAAD(user []byte, s testSlot) []byte {
	a := append([]byte("keyhold/v1/vault/slot\x00"), byte(len(user)>>8), byte(len(user)))
	a = append(append(a, user...), s.kind)
	a = append(a, s.id...)
	a = binary.BigEndian.AppendUint32(a, s.keyVersion)
	a = binary.BigEndian.AppendUint16(a, uint16(len(s.params)))
	return append(a, s.params...)
}

func gcmOpen(key, sealed, aad []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 12+16 {
		return nil, errors.New("too short")
	}
	return g.Open(nil, sealed[:12], sealed[12:], aad)
}

// passphraseKey opens the first passphrase slot at the record's key
// version (PBKDF2-SHA256 only, §3.2) and returns the master key.
func (v *testVault) passphraseKey(user []byte, passphrase string) ([]byte, error) {
	for _, s := range v.slots {
		if s.kind != 1 || s.keyVersion != v.keyVersion {
			continue
		}
		p := s.params
		if len(p) < 15 || p[0] != 2 || int(p[14]) != len(p)-15 {
			return nil, fmt.Errorf("not a PBKDF2-SHA256 slot: % x", p)
		}
		salt := append([]byte("keyhold/v1/kdf/key\x00"), p[15:]...)
		// The passphrase is ASCII: its NFKC form is itself.
		kek, err := pbkdf2.Key(sha256.New, passphrase, salt, int(binary.BigEndian.Uint32(p[10:14])), 32)
		if err != nil {
			return nil, err
		}
		return gcmOpen(kek, s.wrapped, slotAAD(user, s))
	}
	return nil, errors.New("no passphrase slot")
}

// secretSlot finds the kind 3 slot of a credential (§3.2).
func (v *testVault) secretSlot(credID []byte) (testSlot, bool) {
	id := sha256.Sum256(append([]byte("keyhold/v1/vault/secret-slot-id\x00"), credID...))
	for _, s := range v.slots {
		if s.kind == 3 && s.keyVersion == v.keyVersion && bytes.Equal(s.id, id[:16]) {
			return s, true
		}
	}
	return testSlot{}, false
}

// openSecretSlot opens a kind 3 slot with a candidate secret (§3.2).
func (v *testVault) openSecretSlot(s testSlot, user, credID, secret []byte) ([]byte, error) {
	if len(s.params) != 17 || s.params[0] != 16 {
		return nil, errors.New("bad params")
	}
	info := append([]byte("keyhold/v1/vault/secret-kek\x00"), byte(len(user)>>8), byte(len(user)))
	info = append(append(info, user...), credID...)
	kek, err := hkdf.Key(sha256.New, secret, s.params[1:], string(info), 32)
	if err != nil {
		return nil, err
	}
	return gcmOpen(kek, s.wrapped, slotAAD(user, s))
}

// openRecord opens a format 2 envelope (§3.3) with the master key.
func openRecord(mk, user []byte, context string, env []byte) ([]byte, error) {
	if len(env) < 42 || env[0] != 2 || env[1] != 1 {
		return nil, errors.New("not a format 2 envelope")
	}
	key, err := hkdf.Key(sha256.New, mk, nil, "keyhold/v1/vault/record-key", 32)
	if err != nil {
		return nil, err
	}
	aad := append([]byte("keyhold/v1/vault/record\x00"), env[:14]...)
	aad = append(append(aad, byte(len(user)>>8), byte(len(user))), user...)
	return gcmOpen(key, env[14:], append(aad, context...))
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// fingerprint is §3.7's key fingerprint.
func fingerprint(mk, user []byte, version uint32) string {
	info := append([]byte("keyhold/v1/vault/fingerprint\x00"), byte(len(user)>>8), byte(len(user)))
	info = binary.BigEndian.AppendUint32(append(info, user...), version)
	f, err := hkdf.Key(sha256.New, mk, nil, string(info), 10)
	if err != nil {
		return err.Error()
	}
	var s strings.Builder
	for i := range 16 {
		bit := 5 * i
		v := (uint(f[bit/8])<<8 | uint(append(f, 0)[bit/8+1])) >> (11 - bit%8) & 31
		if i > 0 && i%4 == 0 {
			s.WriteByte('-')
		}
		s.WriteByte(crockford[v])
	}
	return s.String()
}

// parseRecoveryKeyText reads a recovery key as shown (§3.2): 32 characters
// of Crockford's base32 in groups, 20 bytes.
func parseRecoveryKeyText(text string) ([]byte, error) {
	t := strings.ReplaceAll(text, "-", "")
	if len(t) != 32 {
		return nil, fmt.Errorf("recovery key %q", text)
	}
	out := make([]byte, 0, 20)
	var acc, bits uint
	for _, c := range t {
		v := strings.IndexRune(crockford, c)
		if v < 0 {
			return nil, fmt.Errorf("recovery key %q", text)
		}
		acc, bits = acc<<5|uint(v), bits+5
		if bits >= 8 {
			out = append(out, byte(acc>>(bits-8)))
			bits -= 8
		}
	}
	return out, nil
}

const zkUncertainWalk = `
const o = arg.origin;
const out = {};
const visible = (p, sel) => p.waitForSelector(sel, { state: 'visible' });
const error = async (p) => { await p.waitForSelector('#zk-error:not([hidden])'); return p.evaluate(() => ({
  text: document.getElementById('zk-error').textContent,
  keys: [...document.querySelectorAll('#zk-error code')].map((c) => c.textContent),
})); };

await page.goto(o + '/signup');
await page.fill('input[name=username]', 'uma');
await page.fill('input[name=password]', arg.password);
await Promise.all([page.waitForURL('**/recovery-keys'), page.click('main button')]);
await Promise.all([page.waitForURL('**/notes'), page.click('text=I have saved them')]);

// The vault's PUT gets no answer, nor does the read back: the outcome is unknown.
await page.goto(o + '/private-notes');
await visible(page, '#zk-create');
await page.route('**/zk/vault', (route) => route.abort());
await page.fill('#zk-create-pass', arg.passphrase);
await page.fill('#zk-create-pass2', arg.passphrase);
await page.click('#zk-create-form button');
out.unknown = await error(page);
await page.unroute('**/zk/vault');

// localStorage full: the vault is stored, the version ledger is not.
await page.addInitScript(() => {
  Storage.prototype.setItem = function () { throw new DOMException('full', 'QuotaExceededError'); };
});
await page.goto(o + '/private-notes');
await visible(page, '#zk-create');
await page.fill('#zk-create-pass', arg.passphrase);
await page.fill('#zk-create-pass2', arg.passphrase);
await page.click('#zk-create-form button');
out.storage = await error(page);
return out;
`

// TestZeroKnowledgePageUncertainWrites: the private-notes page explains a
// vault write whose outcome is unknown (ZKError "outcome_unknown") and a
// browser storage that is blocked or full (ZKError "storage"), and shows
// the new recovery key such an error carries: the server may hold (or
// holds) the vault only it opens.
func TestZeroKnowledgePageUncertainWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser walk")
	}
	t.Parallel()
	origin, _, logs := browserApp(t, nil)
	s := browsertest.Start(t, browsertest.Options{Timeout: 90 * time.Second, ActionTimeout: 20 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	raw, err := s.Eval(ctx, zkUncertainWalk, map[string]any{"origin": origin, "password": password, "passphrase": zkPassphrase})
	if err != nil {
		t.Fatalf("%v\napp log:\n%s", err, logs)
	}
	type shown struct {
		Text string
		Keys []string
	}
	var got struct{ Unknown, Storage shown }
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	recoveryKey := regexp.MustCompile(`^[0-9A-Z]{4}(-[0-9A-Z]{4}){7}$`)
	for _, c := range []struct {
		name string
		got  shown
		says string
	}{
		{"outcome unknown", got.Unknown, "The server may or may not have saved the change; keep both your old and this new recovery key"},
		{"storage full", got.Storage, "storage for this site is blocked or full"},
	} {
		if !strings.Contains(c.got.Text, c.says) {
			t.Errorf("%s: the page says %q, not %q", c.name, c.got.Text, c.says)
		}
		if len(c.got.Keys) != 1 || !recoveryKey.MatchString(c.got.Keys[0]) {
			t.Errorf("%s: the page shows %d recovery key(s), not the new one", c.name, len(c.got.Keys))
		}
	}
}
