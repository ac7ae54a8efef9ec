package keyhold_test

import (
	"bytes"
	"crypto/rand"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/totp"
)

// The TOTP snippets, in a server on plain HTTP at 127.0.0.1: enrollment
// shows a QR code and returns ten recovery codes; the next login waits
// for a code; a wrong code is refused, a right one completes the login
// and works once.
func TestReadmeTOTP(t *testing.T) {
	store := readmeStore(t)
	m, err := session.New(store, session.Config{AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	mux := http.NewServeMux()
	var auth *totp.Authenticator
	if err := readmeTOTP(mux, store, m, key, &auth); err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) { // the password was right
		if err := readmeTOTPPassword(r.Context(), auth, m, "user-1"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.Handle("GET /notes", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := m.Current(r.Context())
		io.WriteString(w, info.Factors.String())
	})))
	srv := httptest.NewServer(m.Handler(mux))
	defer srv.Close()
	c := readmeClient(t)
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	post := func(path string, form url.Values) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.PostForm(srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	codeAt := func(secret string, at time.Time) string {
		code, err := pqtotp.GenerateCodeCustom(secret, at, pqtotp.ValidateOpts{Digits: otp.DigitsSix})
		if err != nil {
			t.Fatal(err)
		}
		return code
	}

	if resp, _ := post("/login", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d", resp.StatusCode)
	}
	resp, qr := get("/2fa/setup")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /2fa/setup: %d", resp.StatusCode)
	}
	if _, err := png.Decode(bytes.NewReader(qr)); err != nil {
		t.Fatalf("the QR code is not a PNG: %v", err)
	}
	token, secret := resp.Header.Get("X-Setup-Token"), resp.Header.Get("X-Secret")
	if resp, _ := post("/2fa/setup", url.Values{"token": {token}, "code": {"000000"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("confirm with a wrong code: %d, want 401", resp.StatusCode)
	}
	resp, body := post("/2fa/setup", url.Values{"token": {token}, "code": {codeAt(secret, time.Now())}})
	if resp.StatusCode != http.StatusOK || len(strings.Fields(string(body))) != 10 {
		t.Fatalf("confirm: %d, %d recovery codes", resp.StatusCode, len(strings.Fields(string(body))))
	}

	// A new login waits for the code.
	if resp, _ := post("/login", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("second login: %d", resp.StatusCode)
	}
	if resp, _ := get("/notes"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /notes pending the code: %d, want 401", resp.StatusCode)
	}
	if resp, _ := post("/login/code", url.Values{"code": {"12345"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a malformed code: %d, want 401", resp.StatusCode)
	}
	// The confirming code's step is used up; the next step's code is in the window.
	next := codeAt(secret, time.Now().Add(30*time.Second))
	if resp, _ := post("/login/code", url.Values{"code": {next}}); resp.Request.URL.Path != "/notes" {
		t.Fatalf("the right code: ended at %s (%d), want /notes", resp.Request.URL.Path, resp.StatusCode)
	}
	if _, body := get("/notes"); string(body) != "password+totp" {
		t.Errorf("the session's factors: %q, want password+totp", body)
	}

	// The same code in another login is refused.
	if resp, _ := post("/login", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("third login: %d", resp.StatusCode)
	}
	if resp, _ := post("/login/code", url.Values{"code": {next}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the same code again: %d, want 401", resp.StatusCode)
	}
}
