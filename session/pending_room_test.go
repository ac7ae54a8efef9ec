package session_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/keyhold/keyhold/session"
)

// SES-13, review of the second factor: someone with the password alone
// (logins pending their second factor) can end none of the owner's
// sessions, neither through the session limit nor through RevokeOthers;
// such logins have room of their own (MaxPendingPerUser), expire after
// PendingLifetime, and show in Devices.
func TestPendingLoginsCannotEndOwnersSessions(t *testing.T) {
	a := newTestApp(t, session.Config{MaxSessionsPerUser: 3})
	m := a.m
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), "alice", session.LoginOptions{SecondFactorPending: r.FormValue("p") == "1"}); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.Handle("GET /me", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "me") })))
	mux.Handle("POST /others", m.RequireFirstFactor(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.RevokeOthers(r.Context()); err != nil {
			if errors.Is(err, session.ErrSecondFactorRequired) {
				http.Error(w, "second factor required", http.StatusUnauthorized)
				return
			}
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, "ok")
	})))
	h := m.Handler(mux)
	name := m.Config().CookieName
	login := func(p string) string {
		resp := serve(h, name, request{method: "POST", target: "/login", form: "p=" + p})
		return sessionCookie(t, resp, name).Value
	}
	owner := []string{login("0")}
	a.clock.Advance(time.Second)
	owner = append(owner, login("0"))
	for range 5 { // more than both limits
		a.clock.Advance(time.Second)
		login("1")
	}
	for i, c := range owner {
		if got := serve(h, name, request{method: "GET", target: "/me", cookie: c}).StatusCode; got != 200 {
			t.Fatalf("owner's session %d after pending logins: %d, want 200", i, got)
		}
	}
	devs, err := m.Devices(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	pending := 0
	for _, d := range devs {
		if d.SecondFactorPending {
			pending++
		}
	}
	if len(devs) != 2+session.MaxPendingPerUser || pending != session.MaxPendingPerUser {
		t.Fatalf("devices: %d, of which %d pending; want 2 complete and %d pending", len(devs), pending, session.MaxPendingPerUser)
	}

	attacker := login("1")
	resp := serve(h, name, request{method: "POST", target: "/others", cookie: attacker})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("RevokeOthers from a pending login: %d %s, want 401", resp.StatusCode, body(resp))
	}
	for i, c := range owner {
		if got := serve(h, name, request{method: "GET", target: "/me", cookie: c}).StatusCode; got != 200 {
			t.Fatalf("owner's session %d after a pending RevokeOthers: %d, want 200", i, got)
		}
	}
	// A pending login ends on its own after PendingLifetime, active or not.
	for elapsed := time.Duration(0); elapsed <= session.PendingLifetime; elapsed += time.Minute {
		a.clock.Advance(time.Minute)
		serve(h, name, request{method: "GET", target: "/me", cookie: attacker})
	}
	devs, err = m.Devices(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.SecondFactorPending {
			t.Fatalf("a pending login outlived PendingLifetime: %+v", d)
		}
	}
}
