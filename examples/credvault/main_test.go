package main

import (
	"bytes"
	"net/http"
	"os"
	"slices"
	"testing"
)

// The whole API over HTTP, as the package documentation's curl session
// uses it: sign-up, the passphrase policy, the vault created and unlocked,
// credentials added, listed, read, changed and deleted, lock and unlock,
// the security status, logout and login again; and afterwards, no secret
// in the logs nor in the clear in the database file (mode 0600).
func TestFlow(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()

	c.want(http.StatusUnauthorized, "not_logged_in", "GET", "/api/security/status", nil)
	c.want(http.StatusUnauthorized, "not_logged_in", "GET", "/api/credentials", nil)
	r := c.want(http.StatusUnprocessableEntity, "policy_violation", "POST", "/api/signup", map[string]string{"username": "ada", "password": "short"})
	if reasons, _ := r.body["error"].(map[string]any)["reasons"].([]any); !slices.Contains(reasons, any("too_short")) {
		t.Errorf("signup reasons: %s", r.raw)
	}
	c.signup("ada", adaPassword)

	st := c.want(http.StatusOK, "", "GET", "/api/security/status", nil).body
	v := st["vault"].(map[string]any)
	if v["exists"] != false || v["unlocked"] != false || v["lock_after_seconds"] != float64(1800) {
		t.Errorf("status before the vault: %v", st)
	}
	c.want(http.StatusConflict, "no_vault", "GET", "/api/credentials", nil)
	c.want(http.StatusConflict, "no_vault", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})

	// The passphrase rule of the system users come from: 12+ characters of
	// four classes.
	for pass, reason := range map[string]string{
		"Short-1!":                "too_short",
		"no-uppercase-here-42!":   "missing_char_class",
		"NoDigitsOrSymbolsAtAll":  "missing_char_class",
		"Credvault-Passphrase-1!": "context_word",
	} {
		r := c.want(http.StatusUnprocessableEntity, "policy_violation", "POST", "/api/passphrase", map[string]string{"passphrase": pass})
		if reasons, _ := r.body["error"].(map[string]any)["reasons"].([]any); !slices.Contains(reasons, any(reason)) {
			t.Errorf("passphrase %q: reasons %s, want %s", pass, r.raw, reason)
		}
	}
	c.want(http.StatusCreated, "", "POST", "/api/passphrase", map[string]string{"passphrase": adaPassphrase})
	c.want(http.StatusConflict, "vault_exists", "POST", "/api/passphrase", map[string]string{"passphrase": adaPassphrase + "x"})

	st = c.want(http.StatusOK, "", "GET", "/api/security/status", nil).body
	v = st["vault"].(map[string]any)
	if v["exists"] != true || v["unlocked"] != true || v["seconds_left"] != float64(1800) || v["recovery_keys"] != float64(0) {
		t.Errorf("status unlocked: %v", st)
	}
	if slots := v["slots"].([]any); len(slots) != 1 || slots[0].(map[string]any)["kind"] != "passphrase" {
		t.Errorf("slots: %v", v["slots"])
	}
	k := st["kdf"].(map[string]any)
	if imp := k["import"].(map[string]any); imp["algorithm"] != "pbkdf2-sha256" || imp["iterations"] != float64(480000) || imp["salt_bytes"] != float64(16) {
		t.Errorf("import KDF: %v", imp)
	}
	if p := st["passphrase_policy"].(map[string]any); p["min_length"] != float64(12) || p["required_classes"] != "lower,upper,digit,symbol" {
		t.Errorf("policy: %v", p)
	}

	// Credentials.
	cred := map[string]string{"site": "bank.example", "username": "ada@example.com", "password": "hunter2-but-longer", "notes": "PIN is 7421"}
	id := str(c.want(http.StatusCreated, "", "POST", "/api/credentials", cred).body, "id")
	id2 := str(c.want(http.StatusCreated, "", "POST", "/api/credentials", map[string]string{"site": "mail.example", "username": "ada", "password": "pw2"}).body, "id")
	list := c.want(http.StatusOK, "", "GET", "/api/credentials", nil).body["credentials"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["site"] != "bank.example" || list[0].(map[string]any)["password"] != nil {
		t.Errorf("list: %v", list)
	}
	got := c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil).body
	for k, want := range cred {
		if got[k] != want {
			t.Errorf("credential %s = %v, want %q", k, got[k], want)
		}
	}
	cred["password"] = "a-new-password-2026"
	c.want(http.StatusOK, "", "PUT", "/api/credentials/"+id, cred)
	if got := c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil).body; got["password"] != cred["password"] {
		t.Errorf("after PUT: %v", got)
	}
	c.want(http.StatusNoContent, "", "DELETE", "/api/credentials/"+id2, nil)
	c.want(http.StatusNotFound, "not_found", "GET", "/api/credentials/"+id2, nil)
	c.want(http.StatusNotFound, "not_found", "PUT", "/api/credentials/"+id2, cred)
	c.want(http.StatusNotFound, "not_found", "GET", "/api/credentials/not-an-id", nil)
	c.want(http.StatusBadRequest, "missing_site", "POST", "/api/credentials", map[string]string{"username": "x"})

	// Lock, a wrong passphrase, unlock.
	c.want(http.StatusOK, "", "POST", "/api/lock", nil)
	c.want(http.StatusLocked, "vault_locked", "GET", "/api/credentials/"+id, nil)
	if st := c.want(http.StatusOK, "", "GET", "/api/security/status", nil).body; st["vault"].(map[string]any)["unlocked"] != false {
		t.Errorf("status after lock: %v", st)
	}
	c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/unlock", map[string]string{"passphrase": bobPassphrase})
	c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil)

	// Logout, a wrong password, login: the vault is locked until unlocked.
	c.want(http.StatusOK, "", "POST", "/api/logout", nil)
	c.want(http.StatusUnauthorized, "not_logged_in", "GET", "/api/credentials/"+id, nil)
	c.want(http.StatusUnauthorized, "wrong_credentials", "POST", "/api/login", map[string]string{"username": "ada", "password": bobPassword})
	c.want(http.StatusUnauthorized, "wrong_credentials", "POST", "/api/login", map[string]string{"username": "nobody", "password": adaPassword})
	if r := c.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "ada", "password": adaPassword}); r.body["vault"] != "locked" {
		t.Errorf("login: %s", r.raw)
	}
	c.want(http.StatusLocked, "vault_locked", "GET", "/api/credentials/"+id, nil)
	c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"passphrase": adaPassphrase})
	if got := c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil).body; got["password"] != cred["password"] {
		t.Errorf("after login and unlock: %v", got)
	}

	ta.noSecretsLogged(adaPassword, adaPassphrase, bobPassword, bobPassphrase, cred["password"], "hunter2-but-longer", "PIN is 7421")

	// The database file is private, and holds no credential in the clear.
	fi, err := os.Stat(ta.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v", fi.Mode().Perm())
	}
	var files []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(ta.dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		files = append(files, b...)
	}
	for _, s := range []string{"bank.example", "ada@example.com", cred["password"], "PIN is 7421", adaPassphrase} {
		if bytes.Contains(files, []byte(s)) {
			t.Errorf("the database holds %q in the clear", s)
		}
	}
}

// main refuses to serve plain HTTP on an address that is not a loopback
// one.
func TestRefusesPlainHTTPOffLoopback(t *testing.T) {
	t.Parallel()
	err := run("0.0.0.0:0", config{DBPath: t.TempDir() + "/x.db"})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("not a loopback address")) {
		t.Fatalf("run on 0.0.0.0: %v", err)
	}
}
