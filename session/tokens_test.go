package session_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyhold/keyhold/session"
)

var b64 = base64.RawURLEncoding

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// SES-23, A13: each refresh rotates both tokens; replaying a rotated
// refresh token revokes the family, including the newest tokens.
func TestRefreshRotationAndReuse(t *testing.T) {
	a := newTestApp(t, session.Config{})
	ctx := context.Background()
	p1, err := a.m.IssueTokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.do(request{method: "GET", target: "/me", header: bearer(p1.AccessToken)}); got.StatusCode != 200 || body(got) != "alice" {
		t.Fatalf("access token: %d", got.StatusCode)
	}
	if p1.AccessExpires.Sub(a.clock.Now()) != session.DefaultAccessTokenTTL {
		t.Errorf("access token lives %v", p1.AccessExpires.Sub(a.clock.Now()))
	}
	p2, err := a.m.Refresh(ctx, p1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if p2.RefreshToken == p1.RefreshToken || p2.AccessToken == p1.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if a.do(request{method: "GET", target: "/me", header: bearer(p1.AccessToken)}).StatusCode != 401 {
		t.Error("the previous access token works after a refresh")
	}
	if a.do(request{method: "GET", target: "/me", header: bearer(p2.AccessToken)}).StatusCode != 200 {
		t.Error("the new access token does not work")
	}

	// Replay RT1 (after the race window): refused, and the family (RT2,
	// AT2) is revoked.
	a.clock.Advance(session.DefaultRefreshRaceWindow)
	if _, err := a.m.Refresh(ctx, p1.RefreshToken); !errors.Is(err, session.ErrTokenReused) || !errors.Is(err, session.ErrInvalidToken) {
		t.Fatalf("replayed refresh token: %v", err)
	}
	if _, err := a.m.Refresh(ctx, p2.RefreshToken); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("RT2 after reuse: %v", err)
	}
	if a.do(request{method: "GET", target: "/me", header: bearer(p2.AccessToken)}).StatusCode != 401 {
		t.Error("AT2 works after the family was revoked")
	}
	if !logged(a.logs.String(), "authn_token_reuse", "user=alice") {
		t.Error("no authn_token_reuse event") // SES-23
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 64), p1.AccessToken} {
		if _, err := a.m.Refresh(ctx, bad); !errors.Is(err, session.ErrInvalidToken) {
			t.Errorf("Refresh(%.10q) = %v", bad, err)
		}
	}
}

// Refresh tokens expire unused after RefreshTokenTTL, and families after
// RefreshLifetime however often they are used.
func TestRefreshExpiry(t *testing.T) {
	a := newTestApp(t, session.Config{RefreshTokenTTL: time.Hour, RefreshLifetime: 3 * time.Hour})
	ctx := context.Background()
	p, _ := a.m.IssueTokens(ctx, "alice")
	a.clock.Advance(61 * time.Minute)
	if _, err := a.m.Refresh(ctx, p.RefreshToken); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("refresh token unused for 61 min: %v", err)
	}
	p, _ = a.m.IssueTokens(ctx, "alice")
	var err error
	for range 5 {
		a.clock.Advance(40 * time.Minute)
		if p, err = a.m.Refresh(ctx, p.RefreshToken); err != nil {
			break
		}
	}
	if !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("family used every 40 min for 200 min: %v, want refused after 3 h", err)
	}
}

// SES-24: of 50 concurrent refreshes with one token exactly one succeeds,
// and the winner's tokens work.
func TestConcurrentRefreshOneWins(t *testing.T) {
	a := newTestApp(t, session.Config{})
	ctx := context.Background()
	p, err := a.m.IssueTokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]session.TokenPair, 50)
	errs := make([]error, 50)
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			results[i], errs[i] = a.m.Refresh(ctx, p.RefreshToken)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	var winner session.TokenPair
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = results[i]
		case !errors.Is(err, session.ErrInvalidToken):
			t.Errorf("loser %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d refreshes succeeded, want exactly 1", wins)
	}
	if _, err := a.m.Refresh(ctx, winner.RefreshToken); err != nil {
		t.Errorf("the winner's refresh token: %v", err)
	}
}

// Tokens never print.
func TestTokenPairRedacts(t *testing.T) {
	a := newTestApp(t, session.Config{})
	p, _ := a.m.IssueTokens(context.Background(), "alice")
	for _, s := range []string{p.String(), p.GoString()} {
		if strings.Contains(s, p.AccessToken) || strings.Contains(s, p.RefreshToken) {
			t.Error("TokenPair prints its tokens")
		}
	}
}

// SES-27: no token or passphrase in any audit record, across every flow.
func TestAuditLogsHoldNoSecrets(t *testing.T) {
	a := newTestApp(t, session.Config{})
	a.createVault("alice")
	ctx := context.Background()
	var secrets []string
	c := a.login("alice")
	secrets = append(secrets, c)
	c = a.unlock(c)
	secrets = append(secrets, c)
	for _, path := range []string{"/reauth", "/renew"} {
		c = sessionCookie(t, a.do(request{method: "POST", target: path, cookie: c}), "__Host-keyhold").Value
		secrets = append(secrets, c)
	}
	a.do(request{method: "POST", target: "/lock", cookie: c})
	a.do(request{method: "POST", target: "/logout", cookie: c})
	p1, _ := a.m.IssueTokens(ctx, "alice")
	p2, _ := a.m.Refresh(ctx, p1.RefreshToken)
	a.clock.Advance(session.DefaultRefreshRaceWindow)
	a.m.Refresh(ctx, p1.RefreshToken) // reuse
	secrets = append(secrets, p1.AccessToken, p1.RefreshToken, p2.AccessToken, p2.RefreshToken, passphrase)
	a.m.RevokeAll(ctx, "alice")

	logs := a.logs.String()
	for _, event := range [][]string{{"session_created", "ip="}, {"crypt_vault_unlocked", "ip="},
		{"session_renewed", "reason=reauthenticated"}, {"session_renewed", "reason=renew"},
		{"crypt_vault_locked", "reason=user"}, {"session_expired", "reason=logout", "ip="}, {"authn_token_created"},
		{"authn_token_rotated"}, {"authn_token_reuse"}, {"session_expired", "reason=revoked_all"}} {
		if !logged(logs, event[0], append([]string{"user=alice"}, event[1:]...)...) {
			t.Errorf("no %s event with %v", event[0], event[1:])
		}
	}
	for _, s := range secrets {
		raw, _ := b64.DecodeString(s)
		for _, form := range []string{s, string(raw), base64.StdEncoding.EncodeToString(raw)} {
			if form != "" && strings.Contains(logs, form) {
				t.Fatalf("a secret reached the audit log")
			}
		}
	}
}

// A rotated token presented within the race window is refused without
// revoking; after the window it is a replay.
func TestRefreshRaceWindow(t *testing.T) {
	a := newTestApp(t, session.Config{RefreshRaceWindow: 5 * time.Second})
	ctx := context.Background()
	p1, _ := a.m.IssueTokens(ctx, "alice")
	p2, err := a.m.Refresh(ctx, p1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(4 * time.Second)
	if _, err := a.m.Refresh(ctx, p1.RefreshToken); !errors.Is(err, session.ErrInvalidToken) || errors.Is(err, session.ErrTokenReused) {
		t.Fatalf("RT1 4 s after its rotation: %v, want ErrInvalidToken without reuse", err)
	}
	p3, err := a.m.Refresh(ctx, p2.RefreshToken)
	if err != nil {
		t.Fatalf("RT2 after the race: %v", err)
	}
	a.clock.Advance(6 * time.Second)
	if _, err := a.m.Refresh(ctx, p2.RefreshToken); !errors.Is(err, session.ErrTokenReused) {
		t.Fatalf("RT2 6 s after its rotation: %v, want ErrTokenReused", err)
	}
	if _, err := a.m.Refresh(ctx, p3.RefreshToken); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("RT3 after the family was revoked: %v", err)
	}
}
