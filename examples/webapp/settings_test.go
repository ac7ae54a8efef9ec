package main

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/sqlstore"
	"github.com/keyhold/keyhold/vault"
)

const newPassword = "quiet harbour lamps at dusk"

// loginWith posts the login form with password.
func (e *testEnv) loginWith(c *http.Client, name, pw string) result {
	e.t.Helper()
	return e.post(c, "/login", url.Values{"username": {name}, "password": {pw}})
}

// db opens the app's database file for the test to read and write.
func (e *testEnv) db() *sql.DB {
	e.t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=rw&_busy_timeout=5000")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

func (e *testEnv) userID(db *sql.DB, name string) string {
	e.t.Helper()
	var id string
	if err := db.QueryRow("SELECT id FROM users WHERE username = ?", name).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// vaultOf opens the user's vault from the database, as the app would.
func (e *testEnv) vaultOf(userID, pw string) (*vault.Unlocked, error) {
	e.t.Helper()
	store, err := sqlstore.OpenSQLite(e.t.Context(), e.dbPath, sqlstore.Config{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer store.Close()
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Unlock(e.t.Context(), userID, []byte(pw))
}

func mustContain(t *testing.T, what string, r result, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.body, w) {
			t.Fatalf("%s: no %q in\n%s", what, w, r.body)
		}
	}
}

// The password change moves the login password and the vault passphrase
// together, behind a recent password, with the policy's reasons, after the
// current password; it logs the other devices out, keeps this one, and
// tells the user.
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")
	other := e.client()
	e.login(other, "ada")

	page := e.get(c, "/account")
	expect(t, "account page", page, 200, "")
	mustContain(t, "account page", page, `action="/account/password"`, "No failed sign-ins")

	change := func(current, next string) result {
		return e.post(c, "/account/password", url.Values{"current": {current}, "new": {next}})
	}
	r := change("velvet otter learns algebra", newPassword)
	expect(t, "wrong current password", r, 401, "")
	mustContain(t, "wrong current password", r, "current password is wrong", "Nothing was changed", `action="/account/password"`)
	r = change(password, "short")
	expect(t, "weak new password", r, 400, "")
	mustContain(t, "weak new password", r, "was not changed", "at least 15 characters")
	r = change(password, "ada keyhold-webapp ada keyhold")
	expect(t, "new password with the username", r, 400, "")
	mustContain(t, "new password with the username", r, "username")
	expect(t, "the same password", change(password, password), 400, "")
	r = change(password, strings.Repeat("long words ", 30))
	expect(t, "new password too long", r, 400, "")
	mustContain(t, "new password too long", r, "was not changed")
	expect(t, "new password not UTF-8", change(password, "\xff\xfe quiet harbour lamps"), 400, "")
	expect(t, "current password not UTF-8", change("\xff\xfe", newPassword), 401, "")

	// Not fresh: the step-up first, then back to the Account page.
	e.clock.Advance(6 * time.Minute)
	expect(t, "not fresh", change(password, newPassword), 303, "/reauth?next=%2Faccount")
	expect(t, "reauth", e.post(c, "/reauth", url.Values{"password": {password}, "next": {"/account"}}), 303, "/account")

	expect(t, "change", change(password, newPassword), 303, "/account?changed=password")
	mustContain(t, "after the change", e.get(c, "/account?changed=password"), "Your password is changed")
	expect(t, "this device keeps its session and vault", e.get(c, "/notes"), 200, "")
	expect(t, "the other device is logged out", e.get(other, "/notes"), 303, "/login?ended=1")

	fresh := e.client()
	r = e.loginWith(fresh, "ada", password)
	expect(t, "login with the old password", r, 401, "")
	expect(t, "login with the new password unlocks the notes", e.loginWith(fresh, "ada", newPassword), 303, "/notes")
	mustContain(t, "notes after the change", e.get(fresh, "/notes"), "groceries")

	logs := e.logs.String()
	for _, event := range []string{"kind=password_changed", "kind=passphrase_changed", "msg=webapp.password_changed"} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %q in the log", event)
		}
	}
	for _, secret := range []string{password, newPassword} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds a password")
		}
	}
}

// A crash between the password change's two writes (the vault's, then
// the login hash's) leaves the user able to log in (old password) and
// unlock (new password), and the same form sent again finishes it.
func TestPasswordChangeCrashBetweenWrites(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")

	stop := func(string) { panic("the process stops here") }
	hookPasswordWrites.Store(&stop)
	r := e.post(c, "/account/password", url.Values{"current": {password}, "new": {newPassword}})
	hookPasswordWrites.Store(nil)
	expect(t, "the change stopped between its writes", r, 500, "")

	// The old password logs in; the notes unlock with the new one.
	b := e.client()
	expect(t, "login with the new password", e.loginWith(b, "ada", newPassword), 401, "")
	expect(t, "login with the old password", e.loginWith(b, "ada", password), 303, "/unlock")
	expect(t, "unlock with the old password", e.post(b, "/unlock", url.Values{"password": {password}}), 401, "")
	expect(t, "unlock with the new password", e.post(b, "/unlock", url.Values{"password": {newPassword}}), 303, "/notes")
	mustContain(t, "notes", e.get(b, "/notes"), "groceries")

	// The same form again finishes the change.
	e.clock.Advance(time.Minute) // the per-account limit of password checks
	expect(t, "the same form again", e.post(b, "/account/password", url.Values{"current": {password}, "new": {newPassword}}), 303, "/account?changed=password")
	d := e.client()
	expect(t, "old password after", e.loginWith(d, "ada", password), 401, "")
	expect(t, "new password after", e.loginWith(d, "ada", newPassword), 303, "/notes")
	mustContain(t, "notes after", e.get(d, "/notes"), "groceries")
	if !strings.Contains(e.logs.String(), "msg=webapp.password_change.resumed") {
		t.Error("the resumed change was not logged")
	}
}

// keyVersions counts the user's notes by the key version of their title
// and body (both the same, or -1 when they differ).
func keyVersions(t *testing.T, db *sql.DB, userID string) map[int]int {
	t.Helper()
	rows, err := db.Query("SELECT title, body FROM notes WHERE user_id = ?", userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int]int{}
	for rows.Next() {
		var title, body []byte
		if err := rows.Scan(&title, &body); err != nil {
			t.Fatal(err)
		}
		tv, _ := noteKeyVersion(title)
		bv, _ := noteKeyVersion(body)
		if tv != bv {
			m[-1]++
		} else {
			m[int(tv)]++
		}
	}
	return m
}

// doCut is a request whose connection the server may cut (a crash in the
// middle of a streamed answer): it returns what arrived.
func (e *testEnv) doCut(c *http.Client, path string, form url.Values) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The master-key rotation end to end: a wrong password changes nothing;
// the rotation logs other devices out and shows new recovery keys once;
// re-sealing stops half-way (the process stops) and is resumed from the
// page; a note edited while it runs keeps its edit; an edit from a page
// read before its note was re-sealed is refused, not written over it;
// the old key is destroyed only once no readable note is under it, and
// then neither the vault nor the session opens anything of the old key.
func TestMasterKeyRotation(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	signupKeys := e.signup(c, "ada")
	const notes = 30 // two batches of resealBatch
	for i := range notes {
		expect(t, "add note", e.post(c, "/notes", url.Values{"title": {fmt.Sprintf("note %02d", i)}, "body": {fmt.Sprintf("body of note %02d", i)}}), 303, "/notes")
	}
	db := e.db()
	uid := e.userID(db, "ada")
	var oldID string
	var oldTitle, oldBody []byte
	var oldVersion int
	if err := db.QueryRow("SELECT id, title, body, version FROM notes WHERE user_id = ? ORDER BY id LIMIT 1", uid).Scan(&oldID, &oldTitle, &oldBody, &oldVersion); err != nil {
		t.Fatal(err)
	}
	other := e.client()
	e.login(other, "ada")

	mustContain(t, "account page", e.get(c, "/account"), `action="/account/rotate"`)
	r := e.post(c, "/account/rotate", url.Values{"password": {"velvet otter learns algebra"}})
	expect(t, "rotate, wrong password", r, 401, "")
	mustContain(t, "rotate, wrong password", r, "Wrong password")
	if got := keyVersions(t, db, uid); got[1] != notes {
		t.Fatalf("after a refused rotation: key versions %v", got)
	}

	expect(t, "rotate", e.post(c, "/account/rotate", url.Values{"password": {password}}), 303, "/account/rotate")
	expect(t, "the other device is logged out", e.get(other, "/notes"), 303, "/login?ended=1")
	page := e.get(c, "/account/rotate")
	keys := recoveryKey.FindAllString(page.body, -1)
	if len(keys) != 2 {
		t.Fatalf("the rotation page shows %d recovery keys:\n%s", len(keys), page.body)
	}
	mustContain(t, "rotation page", page, "version 2", fmt.Sprintf("%d of your %d notes are still sealed under the old key", notes, notes))
	if again := e.get(c, "/account/rotate"); recoveryKey.MatchString(again.body) {
		t.Fatal("the new recovery keys were shown twice")
	}
	mustContain(t, "notes open under the retired key", e.get(c, "/notes"), "body of note 00", "body of note 29")
	mustContain(t, "the account page says it is unfinished", e.get(c, "/account"), `href="/account/rotate"`)

	// The process stops in the middle of the second batch.
	n := 0
	cut := func(string, string) {
		if n++; n == 27 {
			panic("the process stops here")
		}
	}
	hookReseal.Store(&cut)
	code, body := e.doCut(c, "/account/rotate/reseal", url.Values{})
	hookReseal.Store(nil)
	if code != 200 || !strings.Contains(body, "25 of 30 notes checked, 25 re-sealed") || strings.Contains(body, "Done") {
		t.Fatalf("the cut run answered %d:\n%s", code, body)
	}
	if got := keyVersions(t, db, uid); got[2] != 26 || got[1] != 4 {
		t.Fatalf("after the cut run: key versions %v, want 26 at 2 and 4 at 1", got)
	}
	mustContain(t, "the page offers to finish", e.get(c, "/account/rotate"), "4 of your 30 notes are still sealed", `action="/account/rotate/reseal"`)

	// Finishing is refused while readable notes are under the old key.
	r = e.post(c, "/account/rotate/finish", nil)
	expect(t, "finish too early", r, 409, "")
	mustContain(t, "finish too early", r, "4 notes are still sealed under the old key")

	// An edit from a page read before its note was re-sealed names the
	// old version: refused, the re-sealed note kept.
	r = e.post(c, "/notes/"+oldID, url.Values{"title": {"stale"}, "body": {"stale edit"}, "version": {fmt.Sprint(oldVersion)}})
	expect(t, "stale edit", r, 409, "")

	// Resumed: a note is edited between the run's read of it and its
	// write; the edit stands.
	var editID string
	var editVersion int
	if err := db.QueryRow("SELECT id, version FROM notes WHERE user_id = ? ORDER BY id LIMIT 1 OFFSET 27", uid).Scan(&editID, &editVersion); err != nil {
		t.Fatal(err)
	}
	paused, resume := make(chan struct{}), make(chan struct{})
	pause := func(_, id string) {
		if id == editID {
			close(paused)
			<-resume
		}
	}
	hookReseal.Store(&pause)
	// The page streams: the first batch's line arrives while the run is
	// paused in the second.
	done, firstLine := make(chan string), make(chan struct{})
	go func() {
		var got strings.Builder
		defer func() { done <- got.String() }()
		req, _ := http.NewRequest("POST", e.srv.URL+"/account/rotate/reseal", strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			got.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "25 of 30 notes checked, 0 re-sealed") {
				close(firstLine)
			}
		}
	}()
	for _, ch := range []chan struct{}{paused, firstLine} {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			close(resume)
			t.Fatalf("the run did not pause with its progress shown:\n%s", <-done)
		}
	}
	expect(t, "edit during the run", e.post(c, "/notes/"+editID, url.Values{"title": {"edited"}, "body": {"edited while sealing"}, "version": {fmt.Sprint(editVersion)}}), 303, "/notes")
	close(resume)
	body = <-done
	hookReseal.Store(nil)
	if !strings.Contains(body, "Done: 30 notes checked, 3 sealed again") || !strings.Contains(body, `action="/account/rotate/finish"`) {
		t.Fatalf("the resumed run:\n%s", body)
	}
	if got := keyVersions(t, db, uid); got[2] != notes {
		t.Fatalf("after the resumed run: key versions %v", got)
	}
	mustContain(t, "the edit stands", e.get(c, "/notes"), "edited while sealing")

	// An old copy of a note put back: it opens (the retired key is still
	// held), so finishing is refused until it is re-sealed.
	var curTitle, curBody []byte
	var curVersion int
	if err := db.QueryRow("SELECT title, body, version FROM notes WHERE id = ?", oldID).Scan(&curTitle, &curBody, &curVersion); err != nil {
		t.Fatal(err)
	}
	putBack := func(title, body []byte, version int) {
		t.Helper()
		if _, err := db.Exec("UPDATE notes SET title = ?, body = ?, version = ? WHERE id = ?", title, body, version, oldID); err != nil {
			t.Fatal(err)
		}
	}
	putBack(oldTitle, oldBody, oldVersion)
	expect(t, "finish with an old note back", e.post(c, "/account/rotate/finish", nil), 409, "")
	putBack(curTitle, curBody, curVersion)

	expect(t, "finish", e.post(c, "/account/rotate/finish", nil), 303, "/account/rotate?done=1")
	mustContain(t, "done", e.get(c, "/account/rotate?done=1"), "the old key is destroyed", "no older key is kept")
	if strings.Contains(e.get(c, "/account").body, `href="/account/rotate"`) {
		t.Fatal("the account page still offers to finish")
	}

	// Neither the vault nor the session keeps the old key.
	u, err := e.vaultOf(uid, password)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Lock()
	if u.KeyVersion() != 2 || len(u.RetiredVersions()) != 0 {
		t.Fatalf("vault at key version %d with retired keys %v", u.KeyVersion(), u.RetiredVersions())
	}
	if _, err := u.Open(oldTitle, noteContext(oldID, "title")); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("the old key's ciphertext opened: %v", err)
	}
	page = e.get(c, "/notes")
	shown := 0
	for i := range notes {
		if strings.Contains(page.body, fmt.Sprintf("body of note %02d", i)) {
			shown++
		}
	}
	if shown != notes-1 || !strings.Contains(page.body, "edited while sealing") || strings.Contains(page.body, "(unreadable)") {
		t.Fatalf("notes after the rotation: %d of the unedited ones shown:\n%s", shown, page.body)
	}
	putBack(oldTitle, oldBody, oldVersion)
	mustContain(t, "an old ciphertext in the session", e.get(c, "/notes"), "(unreadable)")
	putBack(curTitle, curBody, curVersion)
	if got := strings.Count(e.get(c, "/notes").body, "(unreadable)"); got != 0 {
		t.Fatalf("%d notes unreadable", got)
	}
	// The new recovery keys open the vault; the old ones do not.
	store, err := sqlstore.OpenSQLite(t.Context(), e.dbPath, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	v, err := vault.New(store, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.UnlockWithRecoveryKey(t.Context(), uid, signupKeys[0]); !errors.Is(err, vault.ErrUnlockFailed) {
		t.Fatalf("a recovery key from before the rotation: %v", err)
	}
	ru, _, err := v.UnlockWithRecoveryKey(t.Context(), uid, keys[1])
	if err != nil {
		t.Fatalf("a new recovery key: %v", err)
	}
	if ru.KeyVersion() != 2 {
		t.Fatalf("a new recovery key opens key version %d", ru.KeyVersion())
	}
	ru.Lock()
	logs := e.logs.String()
	for _, event := range []string{"kind=master_key_rotated", "msg=webapp.retired_keys_destroyed"} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %q in the log", event)
		}
	}
}

// Failed logins by someone else lock the account's password sign-in for
// their address; the owner, logged in, reads on the Account page how many
// failures, until when (with the zone), and what to do; login still
// answers the locked account exactly like a wrong password; a password
// change clears the account's count.
func TestAccountLockoutStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	e.login(c, "ada") // this browser is now known for the account
	mustContain(t, "nothing yet", e.get(c, "/account"), "No failed sign-ins")

	attacker := e.client()
	var lockedAt time.Time
	for i := range 10 {
		if i >= 4 {
			e.clock.Advance(3 * time.Minute) // the login limit per address: 5 (the owner's login took one), then one per 3 minutes
		}
		expect(t, "wrong password", e.loginWith(attacker, "ada", fmt.Sprintf("guess number %d of many", i)), 401, "")
		lockedAt = e.clock.Now()
	}
	e.clock.Advance(3 * time.Minute)
	wrong := e.loginWith(attacker, "ada", "guess number 11 of many")
	e.clock.Advance(3 * time.Minute)
	right := e.loginWith(attacker, "ada", password)
	expect(t, "right password, locked", right, 401, "")
	if right.body != wrong.body {
		t.Fatalf("a locked account answers unlike a wrong password:\n%s\n%s", right.body, wrong.body)
	}

	until := lockedAt.Add(time.Hour).UTC()
	page := e.get(c, "/account")
	expect(t, "account page", page, 200, "")
	mustContain(t, "lockout status", page,
		"10 wrong passwords on your account from browsers that had not signed in to it before.",
		"After 10 wrong passwords from your current address (127.0.0.1), attempts from there are refused until "+until.Format("15:04")+" UTC on "+until.Format("2 January 2006")+".",
		"This browser has signed in to your account before",
		"change it below",
		"Failed sign-ins have locked password sign-in to your account from your current address until "+until.Format("15:04")+" UTC on "+until.Format("2 January 2006")+".")

	// The known browser still signs in.
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	e.clock.Advance(3 * time.Minute)
	e.login(c, "ada")

	// A password change clears the account's count (the address stays
	// locked: its guesses were at the old password, but it guessed).
	expect(t, "change", e.post(c, "/account/password", url.Values{"current": {password}, "new": {newPassword}}), 303, "/account?changed=password")
	page = e.get(c, "/account")
	if strings.Contains(page.body, "wrong passwords on your account") {
		t.Fatalf("the account's count survived the password change:\n%s", page.body)
	}
	mustContain(t, "the address stays locked", page, "attempts from there are refused until")
}

// A rotation cut short right after its write (before the new recovery
// keys are stored, the session has the new key or the other sessions
// end): the page says the session holds the old key; after lock and
// unlock it offers new recovery keys and the re-sealing, and finishing
// ends the other session that still held the old key.
func TestMasterKeyRotationCutShort(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	for i := range 3 {
		expect(t, "add note", e.post(c, "/notes", url.Values{"title": {fmt.Sprintf("note %d", i)}, "body": {fmt.Sprintf("body of note %d", i)}}), 303, "/notes")
	}
	other := e.client()
	e.login(other, "ada")

	stop := func(string) { panic("the process stops here") }
	hookRotated.Store(&stop)
	r := e.post(c, "/account/rotate", url.Values{"password": {password}})
	hookRotated.Store(nil)
	expect(t, "rotation cut short", r, 500, "")

	mustContain(t, "the account page", e.get(c, "/account"), `href="/account/rotate"`)
	page := e.get(c, "/account/rotate")
	mustContain(t, "the key page", page, "this session still holds the old one", `action="/lock"`)
	if recoveryKey.MatchString(page.body) {
		t.Fatal("recovery keys shown to a session holding the old key")
	}
	expect(t, "re-seal refused with the old key", e.post(c, "/account/rotate/reseal", nil), 303, "/account/rotate")
	expect(t, "lock", e.post(c, "/lock", nil), 303, "/unlock")
	expect(t, "unlock", e.post(c, "/unlock", url.Values{"password": {password}}), 303, "/notes")
	page = e.get(c, "/account/rotate")
	mustContain(t, "after unlocking", page, "3 of your 3 notes are still sealed under the old key", `action="/account/recovery-keys"`)
	if recoveryKey.MatchString(page.body) {
		t.Fatal("recovery keys shown that the cut rotation never stored")
	}
	expect(t, "new recovery keys", e.post(c, "/account/recovery-keys", nil), 303, "/account/rotate")
	if keys := recoveryKey.FindAllString(e.get(c, "/account/rotate").body, -1); len(keys) != 2 {
		t.Fatalf("%d new recovery keys shown", len(keys))
	}
	code, body := e.doCut(c, "/account/rotate/reseal", url.Values{})
	if code != 200 || !strings.Contains(body, "Done: 3 notes checked, 3 sealed again") {
		t.Fatalf("re-seal: %d\n%s", code, body)
	}
	expect(t, "the other session, before finishing", e.get(other, "/notes"), 200, "")
	expect(t, "finish", e.post(c, "/account/rotate/finish", nil), 303, "/account/rotate?done=1")
	expect(t, "the other session, after", e.get(other, "/notes"), 303, "/login?ended=1")
	mustContain(t, "notes", e.get(c, "/notes"), "body of note 0", "body of note 2")
	u, err := e.vaultOf(e.userID(e.db(), "ada"), password)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Lock()
	if u.KeyVersion() != 2 || len(u.RetiredVersions()) != 0 {
		t.Fatalf("vault at key version %d with retired keys %v", u.KeyVersion(), u.RetiredVersions())
	}
}

// The password change is limited per account like the other forms that
// run the KDF for a logged-in user (10 a minute, whatever their outcome):
// the 11th is refused before any KDF run, on the Account page; a minute
// later it is allowed.
func TestPasswordChangeRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	e.signup(c, "ada")
	wrong := url.Values{"current": {"velvet otter learns algebra"}, "new": {newPassword}}
	weak := url.Values{"current": {password}, "new": {"short"}}
	for i := range 5 { // not 10 wrong ones: the lockout would then lock this address
		expect(t, fmt.Sprintf("wrong current password %d", i+1), e.post(c, "/account/password", wrong), 401, "")
		expect(t, fmt.Sprintf("weak new password %d", i+1), e.post(c, "/account/password", weak), 400, "")
	}
	r := e.post(c, "/account/password", url.Values{"current": {password}, "new": {newPassword}})
	expect(t, "11th in a minute", r, 429, "")
	mustContain(t, "11th in a minute", r, "Too many attempts. Nothing was changed.", `action="/account/password"`)
	e.clock.Advance(time.Minute)
	expect(t, "a minute later", e.post(c, "/account/password", url.Values{"current": {password}, "new": {newPassword}}), 303, "/account?changed=password")
}

// Wrong second-factor codes count on the code lockout: the owner reads
// them on the Account page, with what they mean (the password is known).
func TestAccountLockoutStatusCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	secret, _ := e.enroll(c, "Phone")
	attacker := e.client()
	for range 2 {
		e.loginPending(attacker)
		wrong := wrongCode(e.code(secret))
		for range 2 {
			expect(t, "wrong code", e.post(attacker, "/login/2fa", url.Values{"code": {wrong}}), 401, "")
		}
		expect(t, "logout", e.post(attacker, "/logout", nil), 303, "/")
	}
	mustContain(t, "account page", e.get(c, "/account"),
		"<strong>Authenticator and recovery codes.</strong> 4 wrong codes on your account from browsers that had not signed in to it before.",
		"4 of them came from your current address (127.0.0.1).",
		"someone knows your password")
}

// A multi-factor session (the password and a TOTP code), unlocked, sets a
// new password without the current one: the form appears only once the
// notes are unlocked, the policy's reasons are shown, the other devices
// are logged out, this one stays; afterwards the old password neither
// logs in nor unlocks, and the new one does both.
func TestSetPasswordWithoutCurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")
	secret, _ := e.enroll(c, "Phone")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	other := e.client()
	e.loginPending(other)
	expect(t, "other's code", e.post(other, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")

	e.loginPending(c)
	expect(t, "code", e.post(c, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")
	set := func(pw string) result { return e.post(c, "/account/password/set", url.Values{"new": {pw}}) }
	// Locked: the form asks for a recovery key too; without one, refused.
	mustContain(t, "account page, locked", e.get(c, "/account"), `action="/account/password/set"`, `name="key"`)
	r := set(newPassword)
	expect(t, "set, locked", r, 403, "")
	mustContain(t, "set, locked", r, "Unlock your notes first")
	expect(t, "unlock", e.post(c, "/unlock", url.Values{"password": {password}}), 303, "/notes")

	page := e.get(c, "/account")
	mustContain(t, "account page", page, "Set a new password", `action="/account/password/set"`)
	if strings.Contains(page.body, `name="key"`) {
		t.Fatalf("the form of an unlocked session asks for a recovery key:\n%s", page.body)
	}
	r = set("short")
	expect(t, "weak new password", r, 400, "")
	mustContain(t, "weak new password", r, "was not changed", "at least 15 characters")
	expect(t, "set", set(newPassword), 303, "/account?changed=password")
	mustContain(t, "after", e.get(c, "/account?changed=password"), "Your password is changed")
	expect(t, "this device keeps its session and vault", e.get(c, "/notes"), 200, "")
	expect(t, "the other device is logged out", e.get(other, "/notes"), 303, "/login?ended=1")

	userID := e.userID(e.db(), "ada")
	if _, err := e.vaultOf(userID, password); !errors.Is(err, vault.ErrUnlockFailed) {
		t.Errorf("the vault with the old password: %v, want ErrUnlockFailed", err)
	}
	b := e.client()
	e.clock.Advance(3 * time.Minute)
	expect(t, "login with the old password", e.loginWith(b, "ada", password), 401, "")
	expect(t, "login with the new password", e.loginWith(b, "ada", newPassword), 303, "/login/2fa")
	expect(t, "code", e.post(b, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")
	expect(t, "unlock with the old password", e.post(b, "/unlock", url.Values{"password": {password}}), 401, "")
	expect(t, "unlock with the new password", e.post(b, "/unlock", url.Values{"password": {newPassword}}), 303, "/notes")
	mustContain(t, "notes", e.get(b, "/notes"), "groceries")

	logs := e.logs.String()
	for _, event := range []string{"kind=password_changed", "kind=passphrase_changed", "msg=webapp.password_set "} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %q in the log", event)
		}
	}
	for _, secret := range []string{password, newPassword} {
		if strings.Contains(logs, secret) {
			t.Fatal("the log holds a password")
		}
	}
}

// A password-only session (fresh and unlocked) is not offered the form,
// and its POST is refused: nothing is written.
func TestSetPasswordNeedsMultiFactor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	db := e.db()
	userID := e.userID(db, "ada")
	before := passwordHash(t, db, userID)
	if p := e.get(c, "/account"); p.code != 200 || strings.Contains(p.body, `action="/account/password/set"`) {
		t.Fatalf("the Account page of a password-only session offers to set a password: %d\n%s", p.code, p.body)
	}
	r := e.post(c, "/account/password/set", url.Values{"new": {newPassword}})
	expect(t, "set, one factor", r, 403, "")
	mustContain(t, "set, one factor", r, "was not changed", "current one")
	if passwordHash(t, db, userID) != before {
		t.Error("the login hash was written")
	}
	u, err := e.vaultOf(userID, password)
	if err != nil {
		t.Fatalf("the vault with the password: %v", err)
	}
	u.Lock()
	expect(t, "the password still logs in", e.loginWith(e.client(), "ada", password), 303, "/notes")
	// Not fresh: the step-up first (before any check of the factors).
	e.clock.Advance(6 * time.Minute)
	expect(t, "not fresh", e.post(c, "/account/password/set", url.Values{"new": {newPassword}}), 303, "/reauth?next=%2Faccount")
}

// A crash between the two writes (the login hash's, then the vault's):
// the new password logs in, the old one still unlocks, and the session,
// still unlocked, sends the form again to finish.
func TestSetPasswordCrashBetweenWrites(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	e.enroll(c, "Phone") // c is multi-factor now, and unlocked
	stop := func(string) { panic("the process stops here") }
	hookSetPasswordWrites.Store(&stop)
	r := e.post(c, "/account/password/set", url.Values{"new": {newPassword}})
	hookSetPasswordWrites.Store(nil)
	expect(t, "stopped between the writes", r, 500, "")
	userID := e.userID(e.db(), "ada")
	e.clock.Advance(3 * time.Minute)
	expect(t, "login with the old password", e.loginWith(e.client(), "ada", password), 401, "")
	expect(t, "login with the new password", e.loginWith(e.client(), "ada", newPassword), 303, "/login/2fa")
	if u, err := e.vaultOf(userID, password); err != nil {
		t.Fatalf("the vault with the old password after the crash: %v", err)
	} else {
		u.Lock()
	}
	expect(t, "again", e.post(c, "/account/password/set", url.Values{"new": {newPassword}}), 303, "/account?changed=password")
	u, err := e.vaultOf(userID, newPassword)
	if err != nil {
		t.Fatalf("the vault with the new password: %v", err)
	}
	u.Lock()
}

// A password changed by another request after the form read the login
// hash: the form's compare-and-swap on the hash loses, and it writes
// nothing (the vault keeps its passphrase).
func TestSetPasswordLosesToAnotherChange(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	e.signup(c, "ada")
	e.enroll(c, "Phone") // c is multi-factor now, and unlocked
	db := e.db()
	userID := e.userID(db, "ada")
	other := "!another change's hash"
	change := func(id string) {
		if _, err := db.Exec("UPDATE users SET password_hash = ? WHERE id = ?", other, id); err != nil {
			t.Error(err)
		}
	}
	hookSetPasswordRead.Store(&change)
	r := e.post(c, "/account/password/set", url.Values{"new": {newPassword}})
	hookSetPasswordRead.Store(nil)
	expect(t, "set, raced", r, 409, "")
	mustContain(t, "set, raced", r, "changed elsewhere", "was not changed by this form")
	if h := passwordHash(t, db, userID); h != other {
		t.Errorf("the login hash is %q, want the other change's", h)
	}
	u, err := e.vaultOf(userID, password)
	if err != nil {
		t.Fatalf("the vault with the old password: %v", err)
	}
	u.Lock()
}
