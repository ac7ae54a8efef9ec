package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
)

// makeFile writes a credentials file the way the system users come from
// does, with Python's cryptography (Fernet, PBKDF2HMAC-SHA256 at 480,000
// iterations, a 16-byte salt): vault's own generator script, an
// implementation independent of keyhold's.
func makeFile(t *testing.T, py string, in map[string]string) json.RawMessage {
	t.Helper()
	req, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "../../vault/testdata/make_fernet_credentials.py")
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make_fernet_credentials.py: %v\n%s", err, stderr.Bytes())
	}
	return out
}

// The committed fixture, made by the same script (its passphrase and
// values are in vault/fernet_test.go).
const (
	fixturePassphrase = "Fixture-Passphrase-ü-2024!"
	fixtureEmail      = "migrating.user@example.com"
	fixturePassword   = "correct horse battery staple 42!"
	fixtureMFA        = "JBSWY3DPEHPK3PXP"
)

func fixtureFile(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("../../vault/testdata/fernet_credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nothingImported checks that the user has no vault and no credential.
func (ta *testApp) nothingImported(c *client) {
	ta.t.Helper()
	st := c.want(http.StatusOK, "", "GET", "/api/security/status", nil).body
	if v := st["vault"].(map[string]any); v["exists"] != false || v["unlocked"] != false {
		ta.t.Errorf("a vault after a failed import: %v", v)
	}
	var n int
	if err := ta.db.QueryRow("SELECT count(*) FROM credentials").Scan(&n); err != nil {
		ta.t.Fatal(err)
	}
	if n != 0 {
		ta.t.Errorf("%d credentials after a failed import", n)
	}
}

func importBody(pass string, file json.RawMessage) map[string]any {
	return map[string]any{"passphrase": pass, "file": file, "site": "monarchmoney.com"}
}

// A file made just now by Python's cryptography imports: its login becomes
// one credential, the vault opens with the file's passphrase afterwards.
// Before that, a wrong passphrase and an altered file are refused with 401
// and leave nothing behind; a second import is 409.
func TestImportFromPython(t *testing.T) {
	t.Parallel()
	py := testenv.Python(t, "python3-cryptography", "cryptography")
	in := map[string]string{
		"passphrase": "Ünïcödé Passphrase ✓ 12!",
		"email":      "grace@example.org",
		"password":   "pässwörd ✓ of the old site",
		"mfa_secret": "KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TFOQ",
	}
	file := makeFile(t, py, in)
	ta := newTestApp(t)
	c := ta.client()
	c.signup("grace", adaPassword)

	c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/import", importBody("Wrong Passphrase ✓ 12!", file))
	ta.nothingImported(c)
	var f map[string]any
	if err := json.Unmarshal(file, &f); err != nil {
		t.Fatal(err)
	}
	tok := f["password"].(string)
	f["password"] = tok[:len(tok)-8] + strings.Repeat("A", 8) // the HMAC altered
	altered, _ := json.Marshal(f)
	c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/import", importBody(in["passphrase"], altered))
	ta.nothingImported(c)

	r := c.want(http.StatusCreated, "", "POST", "/api/import", importBody(in["passphrase"], file))
	id := str(r.body, "id")
	got := c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil).body
	want := map[string]string{"site": "monarchmoney.com", "username": in["email"], "password": in["password"], "mfa_secret": in["mfa_secret"], "notes": ""}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("imported %s = %v, want %q", k, got[k], v)
		}
	}
	c.want(http.StatusConflict, "vault_exists", "POST", "/api/import", importBody(in["passphrase"], file))

	// The vault is the user's like any other: it unlocks with the file's
	// passphrase after a new login.
	c.want(http.StatusOK, "", "POST", "/api/logout", nil)
	c.want(http.StatusOK, "", "POST", "/api/login", map[string]string{"username": "grace", "password": adaPassword})
	c.want(http.StatusOK, "", "POST", "/api/unlock", map[string]string{"passphrase": in["passphrase"]})
	if got := c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil).body; got["password"] != in["password"] {
		t.Errorf("after unlock: %v", got)
	}
	ta.noSecretsLogged(in["passphrase"], in["password"], in["mfa_secret"], in["email"])
}

// The committed fixture (made by Python's cryptography too, so this test
// needs no Python): an empty or non-file body is 400, a passphrase the
// policy refuses is 422, both before any key derivation; then it imports.
func TestImportFixture(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	c.signup("migrant", adaPassword)
	file := fixtureFile(t)

	c.want(http.StatusBadRequest, "invalid_file", "POST", "/api/import", map[string]any{"passphrase": fixturePassphrase})
	c.want(http.StatusBadRequest, "invalid_file", "POST", "/api/import", importBody(fixturePassphrase, json.RawMessage(`{"encrypted": false}`)))
	c.want(http.StatusBadRequest, "invalid_file", "POST", "/api/import", importBody(fixturePassphrase, json.RawMessage(`"a string"`)))
	c.want(http.StatusUnprocessableEntity, "policy_violation", "POST", "/api/import", importBody("weakpassword", file))
	c.want(http.StatusUnauthorized, "wrong_passphrase", "POST", "/api/import", importBody("Fixture-Passphrase-u-2024!", file))
	ta.nothingImported(c)

	id := str(c.want(http.StatusCreated, "", "POST", "/api/import", importBody(fixturePassphrase, file)).body, "id")
	got := c.want(http.StatusOK, "", "GET", "/api/credentials/"+id, nil).body
	if got["username"] != fixtureEmail || got["password"] != fixturePassword || got["mfa_secret"] != fixtureMFA {
		t.Errorf("imported: %v", got)
	}
}

// When storing the imported credential fails after keyhold made the vault,
// the vault is deleted again: nothing partial, and the user can import
// again.
func TestImportNothingPartial(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	c := ta.client()
	c.signup("migrant", adaPassword)
	file := fixtureFile(t)
	ctx := context.Background()
	if _, err := ta.db.ExecContext(ctx, `CREATE TRIGGER fail_insert BEFORE INSERT ON credentials BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	c.want(http.StatusInternalServerError, "internal", "POST", "/api/import", importBody(fixturePassphrase, file))
	ta.nothingImported(c)
	if _, err := ta.db.ExecContext(ctx, `DROP TRIGGER fail_insert`); err != nil {
		t.Fatal(err)
	}
	c.want(http.StatusCreated, "", "POST", "/api/import", importBody(fixturePassphrase, file))
}
