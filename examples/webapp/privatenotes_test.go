package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// zkVaultRecord is a structurally valid vault record (FORMAT.md §3.1):
// one PBKDF2-SHA256 passphrase slot at key version 1 whose wrapped key
// is random (the server checks the structure only).
func zkVaultRecord() []byte {
	params := []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	params = binary.BigEndian.AppendUint32(params, 600000)
	params = append(params, 16)
	params = append(params, rand.Text()[:16]...)
	r := []byte("KHV\x01\x00\x00\x00\x01\x01\x01")
	r = append(r, make([]byte, 16)...)
	r = binary.BigEndian.AppendUint32(r, 1)
	r = binary.BigEndian.AppendUint16(r, uint16(len(params)))
	r = append(r, params...)
	r = binary.BigEndian.AppendUint16(r, 60)
	wrapped := make([]byte, 60)
	rand.Read(wrapped)
	return append(r, wrapped...)
}

// zkEnvelope is a format 2 envelope (FORMAT.md §3.3) at record version v,
// with a random nonce, ciphertext and tag.
func zkEnvelope(v uint64) []byte {
	e := binary.BigEndian.AppendUint64([]byte{2, 1, 0, 0, 0, 1}, v)
	rest := make([]byte, 12+20+16)
	rand.Read(rest)
	return append(e, rest...)
}

// zk sends one request of the zero-knowledge API, as the page's client
// does (a body as application/octet-stream, Keyhold-Expect on writes).
func (e *testEnv) zk(c *http.Client, method, path string, body []byte, expect int) result {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/zk"+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if expect >= 0 {
		req.Header.Set("Keyhold-Expect", strconv.Itoa(expect))
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header.Get("Location"), string(b)}
}

// zkBlobs counts a user's zero-knowledge blobs (all users' with "").
func zkBlobs(t *testing.T, dbPath, username string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	q, args := "SELECT count(*) FROM keyhold_blobs", []any{}
	if username != "" {
		var id string
		if err := db.QueryRow("SELECT id FROM users WHERE username = ?", username).Scan(&id); err != nil {
			t.Fatal(err)
		}
		q, args = q+" WHERE user_id = ?", []any{[]byte(id)}
	}
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPrivateNotesEndpoints drives the private notes' server side without
// a browser: the page needs a login but not the server-side vault
// unlocked, and has no inline script; the zero-knowledge API and the
// passkey options answer JSON 401s signed out; the options say plainly
// when no passkey can serve, list a PRF passkey when there is one, and
// are limited per address; a cross-site write is refused.
func TestPrivateNotesEndpoints(t *testing.T) {
	e := newEnv(t, false)
	c := e.client()

	expect(t, "page signed out", e.get(c, "/private-notes"), 303, "/login")
	if r := e.zk(c, "GET", "/", nil, -1); r.code != 401 || !strings.Contains(r.body, `"not_logged_in"`) {
		t.Fatalf("zk status signed out: %d %s", r.code, r.body)
	}
	expectAPI(t, "prf options signed out", e.api(c, "/passkey/prf-options", "", ""), 401, "log in", "/login")
	for _, script := range []string{"/static/private-notes.js", "/static/keyhold-zk.js"} {
		resp, err := c.Get(e.srv.URL + script)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Fatalf("%s: %d %s", script, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	e.signup(c, "ada")
	expect(t, "lock the server-side vault", e.post(c, "/lock", nil), 303, "/unlock")
	p := e.get(c, "/private-notes")
	expect(t, "page, server-side vault locked", p, 200, "")
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(p.body, -1)
	if len(scripts) != 1 || scripts[0] != `<script type="module" src="/static/private-notes.js">` ||
		!strings.Contains(p.body, `<a href="/private-notes">Private notes</a>`) || strings.Contains(p.body, "zk-passkey-unlock") ||
		!strings.Contains(p.body, "At least 15 characters") || !strings.Contains(p.body, "cannot reset it") {
		t.Fatalf("private-notes page: %q\n%s", scripts, p.body)
	}
	if n := e.get(c, "/unlock"); !strings.Contains(n.body, `href="/private-notes"`) {
		t.Fatalf("the menu does not link the private notes:\n%s", n.body)
	}
	if r := e.zk(c, "GET", "/", nil, -1); r.code != 200 || !strings.Contains(r.body, `"vault":null`) {
		t.Fatalf("zk status: %d %s", r.code, r.body)
	}
	expect(t, "unlock", e.post(c, "/unlock", map[string][]string{"password": {password}}), 303, "/notes")
	if n := e.get(c, "/notes"); !strings.Contains(n.body, `<a href="/private-notes">Private notes</a>`) {
		t.Fatalf("the notes page does not link the private notes:\n%s", n.body)
	}

	// No passkey with PRF: a clear 409. With one: its options.
	expectAPI(t, "prf options without passkeys", e.api(c, "/passkey/prf-options", "", ""), 409, "None of your passkeys can unlock private notes", "")
	k := newAR2Authenticator(t, e.origin)
	if r := e.ar2Register(c, k, "Laptop", true); r.code != 200 {
		t.Fatalf("register: %d %s", r.code, r.raw)
	}
	o := parseOptions(t, "prf options", e.api(c, "/passkey/prf-options", "", ""))
	var allow []struct{ ID string }
	_ = json.Unmarshal(o.PublicKey.AllowCredentials, &allow)
	prf, _ := o.PublicKey.Extensions["prf"].(map[string]any)
	byCred, _ := prf["evalByCredential"].(map[string]any)
	if len(allow) != 1 || allow[0].ID != arB64.EncodeToString(k.id) || byCred[allow[0].ID] == nil || o.PublicKey.UserVerification != "required" {
		t.Fatalf("prf options: %s", mustJSON(o))
	}
	if p := e.get(c, "/private-notes"); !strings.Contains(p.body, `id="zk-passkey-unlock"`) || !strings.Contains(p.body, `id="zk-passkey-add"`) {
		t.Fatalf("private-notes page with a PRF passkey:\n%s", p.body)
	}

	// Limited per address, with the passkey sign-ins begun (30 in 15
	// minutes): two used above.
	for i := range 28 {
		if r := e.api(c, "/passkey/prf-options", "", ""); r.code != 200 {
			t.Fatalf("prf options %d: %d %s", i, r.code, r.raw)
		}
	}
	expectAPI(t, "prf options over the limit", e.api(c, "/passkey/prf-options", "", ""), 429, "Too many attempts", "")

	// The API stores what the browser sealed; a cross-site write is
	// refused before it.
	req, _ := http.NewRequest("PUT", e.srv.URL+"/zk/vault", bytes.NewReader(zkVaultRecord()))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Keyhold-Expect", "0")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site vault write: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if r := e.zk(c, "PUT", "/vault", zkVaultRecord(), 0); r.code != 200 || r.body != "{\"version\":1}\n" {
		t.Fatalf("vault write: %d %s", r.code, r.body)
	}
	if r := e.zk(c, "PUT", "/records/n-00", zkEnvelope(1), 0); r.code != 200 {
		t.Fatalf("record write: %d %s", r.code, r.body)
	}
	if n := zkBlobs(t, e.dbPath, "ada"); n != 2 {
		t.Fatalf("%d blobs", n)
	}
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Fatalf("an error was logged:\n%s", logs)
	}
}
