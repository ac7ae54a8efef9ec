package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// One user's credentials are not another's: by ID they are "not found",
// and a sealed record copied into another user's row, moved to another
// user, or copied into another of the same user's rows does not open
// (associated data binds the user and the ID); the answer is 422 without
// any of the record's content.
func TestCredentialsIsolated(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	ada := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	bob := ta.unlockedUser("bob", bobPassword, bobPassphrase)
	secret := map[string]string{"site": "ada-bank.example", "username": "ada.lovelace.1815", "password": "ada's bank password", "notes": "ada's notes"}
	a1 := str(ada.want(http.StatusCreated, "", "POST", "/api/credentials", secret).body, "id")
	a2 := str(ada.want(http.StatusCreated, "", "POST", "/api/credentials", map[string]string{"site": "other.example"}).body, "id")
	b1 := str(bob.want(http.StatusCreated, "", "POST", "/api/credentials", map[string]string{"site": "bob.example", "password": "bob's"}).body, "id")

	bob.want(http.StatusNotFound, "not_found", "GET", "/api/credentials/"+a1, nil)
	bob.want(http.StatusNotFound, "not_found", "PUT", "/api/credentials/"+a1, map[string]string{"site": "x"})
	bob.want(http.StatusNotFound, "not_found", "DELETE", "/api/credentials/"+a1, nil)
	if list := bob.want(http.StatusOK, "", "GET", "/api/credentials", nil).body["credentials"].([]any); len(list) != 1 || list[0].(map[string]any)["id"] != b1 {
		t.Errorf("bob's list: %v", list)
	}
	ada.want(http.StatusOK, "", "GET", "/api/credentials/"+a1, nil) // untouched

	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := ta.db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	noLeak := func(r response) {
		t.Helper()
		for _, s := range secret {
			if strings.Contains(r.raw, s) {
				t.Errorf("the answer holds %q: %s", s, r.raw)
			}
		}
	}
	// Ada's record swapped into Bob's row.
	exec("UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE id = ?) WHERE id = ?", a1, b1)
	noLeak(bob.want(http.StatusUnprocessableEntity, "credential_unreadable", "GET", "/api/credentials/"+b1, nil))
	r := bob.want(http.StatusOK, "", "GET", "/api/credentials", nil)
	noLeak(r)
	if list := r.body["credentials"].([]any); len(list) != 1 || list[0].(map[string]any)["unreadable"] != true {
		t.Errorf("bob's list with the swapped record: %v", list)
	}
	// Ada's row, ID and all, moved to Bob.
	exec("UPDATE credentials SET user_id = (SELECT user_id FROM credentials WHERE id = ?) WHERE id = ?", b1, a1)
	noLeak(bob.want(http.StatusUnprocessableEntity, "credential_unreadable", "GET", "/api/credentials/"+a1, nil))
	exec("UPDATE credentials SET user_id = (SELECT user_id FROM credentials WHERE id = ?) WHERE id = ?", a2, a1)
	// One of Ada's records copied into another of her rows.
	exec("UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE id = ?) WHERE id = ?", a1, a2)
	noLeak(ada.want(http.StatusUnprocessableEntity, "credential_unreadable", "GET", "/api/credentials/"+a2, nil))
	ada.want(http.StatusOK, "", "GET", "/api/credentials/"+a1, nil)
	// An unreadable record can still be deleted.
	ada.want(http.StatusNoContent, "", "DELETE", "/api/credentials/"+a2, nil)
}

// The vault locks after 30 minutes without a request, by the injected
// clock, while the login stays: requests keep it open, however long in
// all; the status counts down; after the idle lock the credentials answer
// 423 until the user unlocks again.
func TestIdleLock(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	id := str(c.want(http.StatusCreated, "", "POST", "/api/credentials", map[string]string{"site": "s"}).body, "id")

	for range 3 { // 87 minutes in all, never 30 idle
		ta.clock.Advance(29 * time.Minute)
		c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil)
	}
	ta.clock.Advance(30 * time.Second)
	st := c.want(http.StatusOK, "", "GET", "/api/security/status", nil).body
	if v := st["vault"].(map[string]any); v["unlocked"] != true || v["seconds_left"] != float64(1770) {
		t.Errorf("30 s after a request: %v", v)
	}
	ta.clock.Advance(30*time.Minute + time.Second)
	c.want(http.StatusLocked, "vault_locked", "GET", "/api/credentials/"+id, nil)
	st = c.want(http.StatusOK, "", "GET", "/api/security/status", nil).body
	if v := st["vault"].(map[string]any); v["unlocked"] != false || v["seconds_left"] != nil || st["session"].(map[string]any)["logged_in"] != true {
		t.Errorf("after the idle lock: %v", st)
	}
	if !strings.Contains(ta.logs.String(), `"msg":"crypt_vault_locked"`) {
		t.Error("no crypt_vault_locked audit event")
	}
	c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil)
}

// Logins are limited per client address (5 per 15 minutes, then one per
// 3 minutes), with 429 and Retry-After.
func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	c.signup("ada", adaPassword)
	c.want(http.StatusOK, "", "POST", "/api/logout", nil)
	for range 5 {
		c.want(http.StatusUnauthorized, "wrong_credentials", "POST", "/api/login", map[string]string{"username": "ada", "password": bobPassword})
	}
	r := c.want(http.StatusTooManyRequests, "rate_limited", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword})
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 180 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	ta.clock.Advance(3 * time.Minute)
	c.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword})
}

// Unlocks are limited per account (10 a minute) before any key derivation,
// and wrong passphrases count in the account's lockout: after 10, this
// address is locked out of the account for an hour, and the right
// passphrase gets the wrong one's answer until then.
func TestUnlockLimits(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	c.want(http.StatusOK, "", "POST", "/api/lock", nil)
	ta.clock.Advance(time.Minute) // the passphrase's creation took a unit
	for range 10 {
		c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/unlock", map[string]string{"passphrase": bobPassphrase})
	}
	c.want(http.StatusTooManyRequests, "rate_limited", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	ta.clock.Advance(time.Minute)
	c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	if !strings.Contains(ta.logs.String(), `"msg":"authn_login_lock"`) {
		t.Error("no authn_login_lock event")
	}
	ta.clock.Advance(time.Hour)
	c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	ta.noSecretsLogged(adaPassphrase, bobPassphrase)
}

// Bodies are bounded (413), JSON only and strict (400), and every request
// that changes state must say Content-Type: application/json (415), which
// no cross-site form can; what browsers mark cross-site is refused (403).
func TestRequestRules(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	cred := `{"site":"s","username":"u","password":"p","notes":""}`

	c.want(http.StatusRequestEntityTooLarge, "body_too_large", "POST", "/api/credentials", `{"site":"s","notes":"`+strings.Repeat("n", maxBody)+`"}`)
	c.want(http.StatusRequestEntityTooLarge, "body_too_large", "POST", "/api/import", `{"passphrase":"p","file":{"salt":"`+strings.Repeat("A", maxImportBody)+`"}}`)
	c.want(http.StatusBadRequest, "field_too_long", "POST", "/api/credentials", map[string]string{"site": "s", "password": strings.Repeat("p", maxPasswordLen+1)})
	c.want(http.StatusBadRequest, "invalid_json", "POST", "/api/credentials", `{"site":"s","extra":1}`)
	c.want(http.StatusBadRequest, "invalid_json", "POST", "/api/credentials", cred+cred)
	c.want(http.StatusBadRequest, "invalid_json", "POST", "/api/credentials", `site=s`)
	c.want(http.StatusBadRequest, "invalid_json", "POST", "/api/credentials", `{"site":1}`)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		c.want(http.StatusUnsupportedMediaType, "unsupported_media_type", "POST", "/api/credentials", cred, "Content-Type", ct)
		c.want(http.StatusUnsupportedMediaType, "unsupported_media_type", "POST", "/api/lock", nil, "Content-Type", ct)
	}
	c.want(http.StatusCreated, "", "POST", "/api/credentials", cred, "Content-Type", "application/json; charset=utf-8")
	c.want(http.StatusForbidden, "cross_origin", "POST", "/api/lock", nil, "Sec-Fetch-Site", "cross-site")
	c.want(http.StatusForbidden, "cross_origin", "POST", "/api/lock", nil, "Origin", "https://evil.example")
	c.want(http.StatusNotFound, "not_found", "GET", "/api/nothing", nil)
	// Still unlocked: none of the refused requests locked it.
	c.want(http.StatusOK, "", "GET", "/api/credentials", nil)
}

// A recovery key, made after the passphrase is given again, unlocks the
// vault once; the answer carries its replacement, and the used key no
// longer works. The status counts the keys.
func TestRecoveryKey(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/recovery-key", map[string]string{"passphrase": bobPassphrase})
	key := str(c.want(http.StatusCreated, "", "POST", "/api/recovery-key", map[string]string{"passphrase": adaPassphrase}).body, "recovery_key")
	if len(key) != 39 {
		t.Fatalf("recovery key %d characters", len(key))
	}
	if v := c.want(http.StatusOK, "", "GET", "/api/security/status", nil).body["vault"].(map[string]any); v["recovery_keys"] != float64(1) || len(v["slots"].([]any)) != 2 {
		t.Errorf("status: %v", v)
	}
	c.want(http.StatusOK, "", "POST", "/api/lock", nil)
	r := c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"recovery_key": strings.ToLower(key)})
	next := str(r.body, "new_recovery_key")
	if len(next) != 39 || next == key {
		t.Fatalf("new recovery key %q", next)
	}
	c.want(http.StatusOK, "", "GET", "/api/credentials", nil)
	c.want(http.StatusOK, "", "POST", "/api/lock", nil)
	c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/unlock", map[string]string{"recovery_key": key})
	c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"recovery_key": next})
	if v := c.want(http.StatusOK, "", "GET", "/api/security/status", nil).body["vault"].(map[string]any); v["recovery_keys"] != float64(1) {
		t.Errorf("status after a recovery: %v", v)
	}
	ta.noSecretsLogged(key, next, adaPassphrase)
}

// A vault holds at most maxCredentials credentials: one more is 409, and
// nothing is stored.
func TestCredentialCap(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.unlockedUser("ada", adaPassword, adaPassphrase)
	id := str(c.want(http.StatusCreated, "", "POST", "/api/credentials", map[string]string{"site": "first"}).body, "id")
	var userID string
	if err := ta.db.QueryRow("SELECT user_id FROM credentials WHERE id = ?", id).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	// Rows up to the cap but one, straight into the table (they need not
	// open: the cap counts rows).
	if _, err := ta.db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO credentials (id, user_id, created, updated, sealed) SELECT printf('%032x', i), ?, 0, 0, x'00' FROM n`, maxCredentials-2, userID); err != nil {
		t.Fatal(err)
	}
	c.want(http.StatusCreated, "", "POST", "/api/credentials", map[string]string{"site": "last"})
	c.want(http.StatusConflict, "too_many_credentials", "POST", "/api/credentials", map[string]string{"site": "one too many"})
	var n int
	if err := ta.db.QueryRow("SELECT count(*) FROM credentials WHERE user_id = ?", userID).Scan(&n); err != nil || n != maxCredentials {
		t.Errorf("%d credentials (%v), want %d", n, err, maxCredentials)
	}
}
