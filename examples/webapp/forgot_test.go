package main

import (
	"database/sql"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/vault"
)

// forgotForm is the "Forgot your password?" form.
func forgotForm(name, key, pw string) url.Values {
	return url.Values{"username": {name}, "key": {key}, "password": {pw}}
}

// replacementKey returns the one recovery key the result page shows, and
// checks that it is none of the keys the user had.
func replacementKey(t *testing.T, r result, had ...string) string {
	t.Helper()
	keys := recoveryKey.FindAllString(r.body, -1)
	if len(keys) != 1 || slices.Contains(had, keys[0]) {
		t.Fatalf("the result page shows keys %q, want one new one (had %q):\n%s", keys, had, r.body)
	}
	return keys[0]
}

// The whole flow, for a user without a second factor: the login page
// links to it; a new password the policy refuses is explained and spends
// nothing; the username and a recovery key then set the new password,
// show the key's replacement once, log this browser in with the vault
// unlocked (the notes written before read), log every other device out,
// and tell the user. Afterwards the old password is refused, the new one
// logs in and unlocks, the spent key is refused, and the replacement and
// the other key work. No secret reaches the log.
func TestForgotPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	keys := e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")
	other := e.client()
	e.login(other, "ada")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")

	if p := e.get(c, "/login"); !strings.Contains(p.body, `href="/forgot"`) {
		t.Fatalf("the login page has no link to the forgotten-password page:\n%s", p.body)
	}
	expect(t, "forgot page", e.get(c, "/forgot"), 200, "")

	weak := e.post(c, "/forgot", forgotForm("ada", keys[0], "short"))
	expect(t, "weak new password", weak, 400, "")
	mustContain(t, "weak new password", weak, "at least 15 characters", "recovery key was not used")

	e.clock.Advance(3 * time.Minute) // the per-address limit: 5 per 15 minutes, one back every 3
	done := e.post(c, "/forgot", forgotForm("ada", keys[0], newPassword))
	expect(t, "forgot", done, 200, "")
	mustContain(t, "forgot", done, "Your password is changed", "You are logged in")
	replacement := replacementKey(t, done, keys...)

	notes := e.get(c, "/notes")
	expect(t, "notes after the reset", notes, 200, "")
	mustContain(t, "notes after the reset", notes, "groceries", "the cat&#39;s name is Ada")
	expect(t, "the other device", e.get(other, "/notes"), 303, "/login?ended=1")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")

	e.clock.Advance(3 * time.Minute)
	expect(t, "old password", e.loginWith(e.client(), "ada", password), 401, "")
	fresh := e.client()
	expect(t, "new password", e.loginWith(fresh, "ada", newPassword), 303, "/notes") // unlocked by it: the vault has it
	mustContain(t, "notes with the new password", e.get(fresh, "/notes"), "groceries")

	e.clock.Advance(3 * time.Minute)
	spent := e.post(e.client(), "/forgot", forgotForm("ada", keys[0], "a third password nobody guesses"))
	expect(t, "the spent key", spent, 401, "")
	mustContain(t, "the spent key", spent, errForgot)
	expect(t, "new password after the spent key", e.loginWith(e.client(), "ada", newPassword), 303, "/notes")

	for i, k := range []string{replacement, keys[1]} {
		e.clock.Advance(6 * time.Minute)
		pw := "another fresh password " + strconv.Itoa(i) + " for ada"
		r := e.post(e.client(), "/forgot", forgotForm("ada", strings.ToLower(k), pw))
		expect(t, "key "+strconv.Itoa(i), r, 200, "")
		replacementKey(t, r, append(keys, replacement)...)
		e.clock.Advance(6 * time.Minute)
		expect(t, "login after key "+strconv.Itoa(i), e.loginWith(e.client(), "ada", pw), 303, "/notes")
	}

	logs := e.logs.String()
	for _, event := range []string{"kind=recovery_key_used", "kind=password_changed", "kind=passphrase_changed", "msg=webapp.password_reset "} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %q in the log", event)
		}
	}
	for _, secret := range append([]string{password, newPassword, replacement}, keys...) {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

// A wrong key, an unknown user, a name no user can have and a malformed
// key get one answer; each wrong key is tried on a vault (the user's, or
// the dummy vault for a name without one), so they cost the same work;
// nothing changes.
func TestForgotPasswordWrongKeyUnknownUserAlike(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	keys := e.signup(c, "ada")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	var mu sync.Mutex
	var tried []string
	hook := func(id string) { mu.Lock(); tried = append(tried, id); mu.Unlock() }
	hookForgotTry.Store(&hook)
	t.Cleanup(func() { hookForgotTry.Store(nil) })
	userID := e.userID(e.db(), "ada")

	// A well-formed key that is not ada's: one of another user's.
	otherKeys := e.signup(e.client(), "bob")
	wrongKey := e.post(e.client(), "/forgot", forgotForm("ada", otherKeys[0], newPassword))
	unknown := e.post(e.client(), "/forgot", forgotForm("nobody", keys[0], newPassword))
	e.clock.Advance(15 * time.Minute)
	invalid := e.post(e.client(), "/forgot", forgotForm("no body!", keys[0], newPassword))
	malformed := e.post(e.client(), "/forgot", forgotForm("ada", strings.Repeat("K", 500), newPassword))
	for name, r := range map[string]result{"wrong key": wrongKey, "unknown user": unknown, "invalid name": invalid, "malformed key": malformed} {
		expect(t, name, r, 401, "")
		body := r.body
		for _, typed := range []string{`value="nobody"`, `value="no body!"`} {
			body = strings.Replace(body, typed, `value="ada"`, 1)
		}
		if body != wrongKey.body {
			t.Errorf("%s answers otherwise than a wrong key:\n%s\n---\n%s", name, r.body, wrongKey.body)
		}
	}
	mu.Lock()
	got := slices.Clone(tried)
	mu.Unlock()
	if want := []string{userID, forgotDummyUser, forgotDummyUser, userID}; !slices.Equal(got, want) {
		t.Errorf("vaults tried %q, want %q", got, want)
	}
	// The dummy vault is a new user's: two recovery slots.
	dv, err := forgotDummyVault()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := dv.Slots(t.Context(), forgotDummyUser)
	if n := len(slices.DeleteFunc(slots, func(s vault.SlotInfo) bool { return s.Kind != vault.SlotRecovery })); err != nil || n != 2 {
		t.Errorf("the dummy vault has %d recovery slots (%v), want 2", n, err)
	}
	e.clock.Advance(15 * time.Minute)
	e.login(e.client(), "ada") // the old password still works
	e.clock.Advance(3 * time.Minute)
	expect(t, "ada's key still works", e.post(e.client(), "/forgot", forgotForm("ada", keys[0], newPassword)), 200, "")
}

// forgotFormCode is the form with the code of a second factor.
func forgotFormCode(name, key, code, pw string) url.Values {
	f := forgotForm(name, key, pw)
	f.Set("code", code)
	return f
}

// A user with an authenticator: the recovery key and a code reset the
// password but log no one in; the normal login then asks for the code.
func TestForgotPasswordTOTPUserNotLoggedIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	keys := e.signup(c, "ada")
	secret, _ := e.enroll(c, "Phone")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")

	e.clock.Advance(30 * time.Second) // the enrollment's code is used
	r := e.post(c, "/forgot", forgotFormCode("ada", keys[0], e.code(secret), newPassword))
	expect(t, "forgot", r, 200, "")
	mustContain(t, "forgot", r, "second factor", `href="/login"`)
	replacementKey(t, r, keys...)
	if strings.Contains(r.body, "You are logged in") {
		t.Fatalf("the page says logged in:\n%s", r.body)
	}
	for _, path := range []string{"/notes", "/account", "/2fa", "/devices"} {
		expect(t, path+" after the reset", e.get(c, path), 303, "/login")
	}
	e.clock.Advance(3 * time.Minute)
	expect(t, "login, new password", e.loginWith(c, "ada", newPassword), 303, "/login/2fa")
	expect(t, "notes, code pending", e.get(c, "/notes"), 303, "/login/2fa")
	e.clock.Advance(30 * time.Second)
	expect(t, "code", e.post(c, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")
	expect(t, "unlock with the new password", e.post(c, "/unlock", url.Values{"password": {newPassword}}), 303, "/notes")
}

// The form shares the login's limit per address: the sixth attempt in 15
// minutes is refused before the handler runs.
func TestForgotPasswordRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	for i := range 5 {
		r := e.do(c, "POST", "/forgot", forgotForm("user"+strconv.Itoa(i), "0000-0000-0000-0000-0000-0000-0000-0000", newPassword),
			http.Header{"X-Forwarded-For": {"198.51.100." + strconv.Itoa(i)}})
		expect(t, "wrong key", r, 401, "")
	}
	r := e.post(c, "/forgot", forgotForm("user9", "0000-0000-0000-0000-0000-0000-0000-0000", newPassword))
	expect(t, "sixth attempt", r, 429, "")
	mustContain(t, "sixth attempt", r, "Too many attempts")
	if n := strings.Count(e.logs.String(), "webapp.forgot.failed"); n != 5 {
		t.Errorf("the handler ran %d times, want 5", n)
	}
	expect(t, "login from the same address", e.loginWith(c, "user9", password), 429, "")
	e.clock.Advance(3 * time.Minute)
	expect(t, "after 3 minutes", e.post(c, "/forgot", forgotForm("user9", "0000-0000-0000-0000-0000-0000-0000-0000", newPassword)), 401, "")
}

// Wrong keys count in the account's lockout with wrong passwords: ten of
// them lock the account for new browsers; then the right key is answered
// as a wrong one and not spent, and the right password is refused too;
// once the lock ends the same key works.
func TestForgotPasswordLockout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.client()
	keys := e.signup(c, "ada")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	attacker := e.client()
	wrong := forgotForm("ada", "0000-0000-0000-0000-0000-0000-0000-0000", newPassword)
	var first result
	for i := range 10 {
		if i > 0 && i%4 == 0 {
			e.clock.Advance(15 * time.Minute)
		}
		var r result
		if i%2 == 0 { // keys and passwords on one count
			r = e.post(attacker, "/forgot", wrong)
		} else {
			r = e.loginWith(attacker, "ada", "not the password at all")
		}
		expect(t, "wrong attempt "+strconv.Itoa(i), r, 401, "")
		if i == 0 {
			first = r
		}
	}
	e.clock.Advance(15 * time.Minute)
	locked := e.post(e.client(), "/forgot", forgotForm("ada", keys[0], newPassword))
	expect(t, "right key, locked", locked, 401, "")
	if locked.body != first.body {
		t.Errorf("a locked account's answer differs from a wrong key's:\n%s\n---\n%s", locked.body, first.body)
	}
	expect(t, "right password, locked", e.loginWith(e.client(), "ada", password), 401, "")
	e.clock.Advance(time.Hour)
	expect(t, "the key after the lock", e.post(e.client(), "/forgot", forgotForm("ada", keys[0], newPassword)), 200, "")
}

// A crash between the two writes (the login hash's, then the vault's)
// leaves the user able to get in: the new password logs in, and the
// vault, still under the forgotten one, opens again through this form
// with the other recovery key, which finishes the reset.
func TestForgotPasswordCrashBetweenWrites(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	keys := e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")

	stop := func(string) { panic("the process stops here") }
	hookForgotWrites.Store(&stop)
	r := e.post(c, "/forgot", forgotForm("ada", keys[0], newPassword))
	hookForgotWrites.Store(nil)
	expect(t, "the reset stopped between its writes", r, 500, "")

	b := e.client()
	expect(t, "login with the old password", e.loginWith(b, "ada", password), 401, "")
	expect(t, "login with the new password", e.loginWith(b, "ada", newPassword), 303, "/unlock") // in, locked
	expect(t, "unlock with the new password", e.post(b, "/unlock", url.Values{"password": {newPassword}}), 401, "")

	done := e.post(b, "/forgot", forgotForm("ada", keys[1], newPassword))
	expect(t, "the other key", done, 200, "")
	mustContain(t, "the other key", done, "You are logged in")
	mustContain(t, "notes", e.get(b, "/notes"), "groceries")
	e.clock.Advance(15 * time.Minute)
	d := e.client()
	expect(t, "new password after", e.loginWith(d, "ada", newPassword), 303, "/notes")
}

// The reset on PostgreSQL and Redis, where the app's SQL is rebound and
// sessions, limits and lockouts live in Redis.
func TestForgotPasswordOnPostgresAndRedis(t *testing.T) {
	dsn, _, _ := testSchema(t)
	redisURL, prefix, _ := testRedis(t)
	e := newEnvWith(t, true, config{PostgresDSN: dsn, RedisURL: redisURL, RedisPrefix: prefix})
	c := e.client()
	keys := e.signup(c, "ada")
	other := e.client()
	e.login(other, "ada")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	expect(t, "wrong key", e.post(c, "/forgot", forgotForm("ada", "0000-0000-0000-0000-0000-0000-0000-0000", newPassword)), 401, "")
	r := e.post(c, "/forgot", forgotForm("ada", keys[0], newPassword))
	expect(t, "forgot", r, 200, "")
	replacementKey(t, r, keys...)
	expect(t, "notes", e.get(c, "/notes"), 200, "")
	expect(t, "the other device", e.get(other, "/notes"), 303, "/login?ended=1")
	e.clock.Advance(15 * time.Minute)
	expect(t, "old password", e.loginWith(e.client(), "ada", password), 401, "")
	expect(t, "new password", e.loginWith(e.client(), "ada", newPassword), 303, "/notes")
}

// passwordHash reads the user's stored login hash.
func passwordHash(t *testing.T, db *sql.DB, userID string) string {
	t.Helper()
	var h string
	if err := db.QueryRow("SELECT password_hash FROM users WHERE id = ?", userID).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// forgotTries records the vaults the recovery keys are tried on (the
// test must not run in parallel: the hook is the process's).
func forgotTries(t *testing.T) func() []string {
	var mu sync.Mutex
	var tried []string
	hook := func(id string) { mu.Lock(); tried = append(tried, id); mu.Unlock() }
	hookForgotTry.Store(&hook)
	t.Cleanup(func() { hookForgotTry.Store(nil) })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(tried)
		tried = tried[:0]
		return out
	}
}

// sameAnswer fails unless r is the answer an unknown user got (the name
// typed aside).
func sameAnswer(t *testing.T, what string, r, unknown result, name string) {
	t.Helper()
	expect(t, what, r, 401, "")
	if strings.Replace(unknown.body, `value="nobody"`, `value="`+name+`"`, 1) != r.body {
		t.Errorf("%s answers otherwise than an unknown user:\n%s\n---\n%s", what, r.body, unknown.body)
	}
}

// A stolen recovery key alone does not reset the password of a user with
// an authenticator: without the code (missing, wrong, a wrong login
// recovery code) the answer is an unknown user's, the key is tried on the
// dummy vault only (so it is not spent: it works afterwards), nothing is
// written and no session ends, and each code is counted by the code
// lockout (the owner reads the count on the Account page). With the right
// code the key resets the password; that code, replayed, is refused; a
// login recovery code works in its place, once.
func TestForgotPasswordTOTPNeedsCode(t *testing.T) {
	e := newEnv(t, true)
	c := e.client()
	keys := e.signup(c, "ada")
	expect(t, "add note", e.post(c, "/notes", url.Values{"title": {"groceries"}, "body": {noteText}}), 303, "/notes")
	secret, codes := e.enroll(c, "Phone") // c: logged in, unlocked
	db := e.db()
	userID := e.userID(db, "ada")
	hashBefore := passwordHash(t, db, userID)
	tries := forgotTries(t)

	attacker := e.client()
	e.clock.Advance(30 * time.Second) // the enrollment's code is used
	unknown := e.post(attacker, "/forgot", forgotFormCode("nobody", keys[0], e.code(secret), newPassword))
	expect(t, "unknown user", unknown, 401, "")
	mustContain(t, "unknown user", unknown, "Nothing was changed", "two-factor", "passkey")
	sameAnswer(t, "right key, no code", e.post(attacker, "/forgot", forgotForm("ada", keys[0], newPassword)), unknown, "ada")
	sameAnswer(t, "right key, wrong code", e.post(attacker, "/forgot", forgotFormCode("ada", keys[0], wrongCode(e.code(secret)), newPassword)), unknown, "ada")
	sameAnswer(t, "right key, wrong recovery code", e.post(attacker, "/forgot", forgotFormCode("ada", keys[0], "0000-0000-0000-0000-0000-0000-0000-0000", newPassword)), unknown, "ada")
	if got := tries(); !slices.Equal(got, []string{forgotDummyUser, forgotDummyUser, forgotDummyUser, forgotDummyUser}) {
		t.Errorf("vaults tried %q, want the dummy's only", got)
	}
	if h := passwordHash(t, db, userID); h != hashBefore {
		t.Error("the login hash was written")
	}
	if u, err := e.vaultOf(userID, password); err != nil {
		t.Errorf("the vault no longer opens with the password: %v", err)
	} else {
		u.Lock()
	}
	expect(t, "ada's session after the refusals", e.get(c, "/notes"), 200, "")
	mustContain(t, "account page", e.get(c, "/account"),
		"<strong>Authenticator and recovery codes.</strong> 3 wrong codes on your account")
	if strings.Contains(e.logs.String(), "webapp.forgot.key_used") {
		t.Error("a key was used")
	}

	// The right code: the same key (not spent) resets the password.
	e.clock.Advance(15 * time.Minute) // the per-address limit
	code := e.code(secret)
	done := e.post(attacker, "/forgot", forgotFormCode("ada", keys[0], code, newPassword))
	expect(t, "right key and code", done, 200, "")
	mustContain(t, "right key and code", done, "Your password is changed", "second factor")
	replacement := replacementKey(t, done, keys...)
	if got := tries(); !slices.Equal(got, []string{userID}) {
		t.Errorf("vaults tried %q, want ada's", got)
	}
	expect(t, "ada's session after the reset", e.get(c, "/notes"), 303, "/login?ended=1")

	// The code again, within its 30 seconds: refused; the replacement key
	// is not spent.
	second := "a second new password for ada"
	sameAnswer(t, "replayed code", e.post(attacker, "/forgot", forgotFormCode("ada", replacement, code, second)), unknown, "ada")
	if got := tries(); !slices.Equal(got, []string{forgotDummyUser}) {
		t.Errorf("vaults tried %q, want the dummy's", got)
	}
	// A login recovery code in the code's place: once.
	r := e.post(attacker, "/forgot", forgotFormCode("ada", replacement, strings.ToLower(codes[0]), second))
	expect(t, "recovery code", r, 200, "")
	replacement2 := replacementKey(t, r, append(keys, replacement)...)
	sameAnswer(t, "used recovery code", e.post(attacker, "/forgot", forgotFormCode("ada", replacement2, codes[0], newPassword)), unknown, "ada")

	e.clock.Advance(15 * time.Minute)
	b := e.client()
	expect(t, "the first new password", e.loginWith(b, "ada", newPassword), 401, "")
	expect(t, "the second new password", e.loginWith(b, "ada", second), 303, "/login/2fa")
	expect(t, "code", e.post(b, "/login/2fa", url.Values{"code": {e.code(secret)}}), 303, "/unlock?after=2fa")
	expect(t, "unlock", e.post(b, "/unlock", url.Values{"password": {second}}), 303, "/notes")
	mustContain(t, "notes", e.get(b, "/notes"), "groceries")
}

// A user whose only second factor is a passkey: this form cannot check
// it, so it refuses them as it refuses an unknown user, trying the key on
// the dummy vault only; they sign in with the passkey, unlock, and set a
// new password on the Account page without the old one.
func TestForgotPasswordPasskeyUser(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()
	keys := e.signup(c, "ada")
	pk := e.addSoftPasskey(c, "Laptop")
	expect(t, "logout", e.post(c, "/logout", nil), 303, "/")
	tries := forgotTries(t)

	unknown := e.post(c, "/forgot", forgotForm("nobody", keys[0], newPassword))
	mustContain(t, "form", e.get(c, "/forgot"), `name="code"`, "Account page")
	sameAnswer(t, "passkey user", e.post(c, "/forgot", forgotForm("ada", keys[0], newPassword)), unknown, "ada")
	if got := tries(); !slices.Equal(got, []string{forgotDummyUser, forgotDummyUser}) {
		t.Errorf("vaults tried %q, want the dummy's only", got)
	}

	// The way in: the passkey (this one has no PRF: the notes stay
	// locked), then a recovery key with the new password on the Account
	// page. A weak password spends nothing; a wrong key is refused.
	o := parseOptions(t, "login begin", e.api(c, "/passkey/login/begin", "", ""))
	if r := e.api(c, "/passkey/login/finish", pk.assert(o.PublicKey.Challenge, false), ""); r.code != 200 || r.ans.Next != "/unlock?after=passkey" {
		t.Fatalf("passkey login: %d %s", r.code, r.raw)
	}
	mustContain(t, "account page", e.get(c, "/account"), `action="/account/password/set"`, `name="key"`)
	set := func(key, pw string) result {
		return e.post(c, "/account/password/set", url.Values{"key": {key}, "new": {pw}})
	}
	expect(t, "weak password", set(keys[0], "short"), 400, "")
	r := set("0000-0000-0000-0000-0000-0000-0000-0000", newPassword)
	expect(t, "wrong key", r, 401, "")
	mustContain(t, "wrong key", r, "recovery key did not work", "Nothing was changed")
	expect(t, "still locked", e.get(c, "/notes"), 303, "/unlock")
	r = set(keys[0], newPassword)
	expect(t, "set with the key", r, 200, "")
	mustContain(t, "set with the key", r, "Your password is changed", "notes are unlocked")
	replacementKey(t, r, keys...)
	expect(t, "unlocked", e.get(c, "/notes"), 200, "")
	e.clock.Advance(15 * time.Minute)
	expect(t, "the old password", e.loginWith(e.client(), "ada", password), 401, "")
	expect(t, "the new password", e.loginWith(e.client(), "ada", newPassword), 303, "/notes")
}
