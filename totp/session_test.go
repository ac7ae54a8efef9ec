package totp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/testkit"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/totp"
)

// A password login of an enrolled user, pending its second factor, is
// refused by RequireLogin (SES-13); VerifyLogin with the right code
// completes it: a new token, multi-factor, with the password and TOTP
// factors, and the pending token is dead.
func TestSessionPendingUntilCode(t *testing.T) {
	a := newSessionApp(t, ratelimit.LockoutPolicy{})
	e := a.enrollFirst("alice")
	if enrolled, err := a.auth.Enrolled(t.Context(), "alice"); err != nil || !enrolled {
		t.Fatalf("Enrolled: %v, %v", enrolled, err)
	}
	pending := a.login("alice", true)
	if got := a.status(pending, a.m.RequireLogin); got != 401 {
		t.Fatalf("RequireLogin with the password only: %d, want 401", got)
	}
	if got := a.status(pending, a.m.RequireMultiFactor); got != 401 {
		t.Fatalf("RequireMultiFactor with the password only: %d, want 401", got)
	}
	if info, ok := a.info(pending); !ok || !info.SecondFactorPending || info.MultiFactor {
		t.Fatalf("pending login: %+v, %v", info, ok)
	}

	code := a.next(e)
	var err error
	complete := a.in(pending, func(ctx context.Context) { err = a.auth.VerifyLogin(ctx, code, noSource) })
	if err != nil {
		t.Fatalf("VerifyLogin: %v", err)
	}
	if complete == "" || complete == pending {
		t.Fatalf("the token was not re-issued: %q", complete)
	}
	info, ok := a.info(complete)
	if !ok || info.SecondFactorPending || !info.MultiFactor || !info.Factors.Has(session.FactorPassword|session.FactorTOTP) {
		t.Fatalf("after VerifyLogin: %+v, %v", info, ok)
	}
	for name, guard := range map[string]func(h http.Handler) http.Handler{"RequireLogin": a.m.RequireLogin, "RequireMultiFactor": a.m.RequireMultiFactor} {
		if got := a.status(complete, guard); got != 200 {
			t.Errorf("%s after VerifyLogin: %d", name, got)
		}
	}
	if got := a.status(pending, a.m.RequireLogin); got != 401 {
		t.Errorf("the pending token after VerifyLogin: %d, want 401", got)
	}
}

// RecoverLogin completes a pending login with a recovery code: the
// session gets the recovery-code factor and a new token, the user's other
// sessions end, and the answer says how many codes are left. The Notifier
// hears of it and the audit log records it, without the code (TOT-12).
func TestSessionRecoverLogin(t *testing.T) {
	a := newSessionApp(t, ratelimit.LockoutPolicy{})
	e := a.enrollFirst("alice")
	other := a.mfaLogin("alice", e) // say, the thief's, with the lost phone
	pending := a.login("alice", true)
	a.events.reset()

	code := e.codes[0].Reveal()
	var st totp.RecoveryStatus
	var err error
	complete := a.in(pending, func(ctx context.Context) { st, err = a.auth.RecoverLogin(ctx, code, noSource) })
	if err != nil {
		t.Fatalf("RecoverLogin: %v", err)
	}
	if want := len(e.codes) - 1; st.Remaining != want || st.Total != len(e.codes) {
		t.Errorf("status %+v, want %d of %d left", st, want, len(e.codes))
	}
	if complete == "" || complete == pending {
		t.Fatalf("the token was not re-issued: %q", complete)
	}
	info, ok := a.info(complete)
	if !ok || info.SecondFactorPending || !info.MultiFactor || !info.Factors.Has(session.FactorPassword|session.FactorRecoveryCode) {
		t.Fatalf("after RecoverLogin: %+v, %v", info, ok)
	}
	if got := a.status(other, a.m.RequireLogin); got != 401 {
		t.Errorf("the user's other session after RecoverLogin: %d, want 401 (revoked)", got)
	}
	if got := a.status(complete, a.m.RequireLogin); got != 200 {
		t.Errorf("the recovered session: %d", got)
	}

	used := a.events.of(keyhold.LoginRecoveryCodeUsed)
	if len(used) != 1 || used[0].UserID != "alice" || used[0].Detail != fmt.Sprint(len(e.codes)-1) {
		t.Errorf("Notifier heard %+v, want one %s for alice with %d left", used, keyhold.LoginRecoveryCodeUsed, len(e.codes)-1)
	}
	recs := a.logRecords("authn_recovery_code_used")
	if len(recs) != 1 || recs[0]["user"] != "alice" || recs[0]["remaining"] != float64(len(e.codes)-1) {
		t.Errorf("audit records %v, want one for alice with remaining %d", recs, len(e.codes)-1)
	}
	logs := a.logs.String()
	for _, form := range []string{code, strings.ReplaceAll(code, "-", ""), strings.ReplaceAll(code, " ", "")} {
		if strings.Contains(logs, form) {
			t.Errorf("the audit log holds the recovery code %q", form)
		}
	}
}

// The second-factor step checks the code of the pending session's user
// only: alice's pending login with bob's valid TOTP code or recovery code
// fails, and bob's codes stay unused (TOT-09).
func TestSessionCodeOfAnotherUser(t *testing.T) {
	a := newSessionApp(t, ratelimit.LockoutPolicy{})
	a.enrollFirst("alice")
	bob := a.enrollFirst("bob")
	pending := a.login("alice", true)
	bobsCode := a.next(bob)

	var err error
	after := a.in(pending, func(ctx context.Context) { err = a.auth.VerifyLogin(ctx, bobsCode, noSource) })
	if !rejected(err) {
		t.Fatalf("alice's pending login with bob's TOTP code: %v, want rejected", err)
	}
	after = a.in(after, func(ctx context.Context) { _, err = a.auth.RecoverLogin(ctx, bob.codes[0].Reveal(), noSource) })
	if !rejected(err) {
		t.Fatalf("alice's pending login with bob's recovery code: %v, want rejected", err)
	}
	if info, ok := a.info(after); !ok || !info.SecondFactorPending || info.MultiFactor || info.UserID != "alice" {
		t.Fatalf("alice's session after bob's codes: %+v, %v", info, ok)
	}
	if err := a.auth.Verify(t.Context(), "bob", bobsCode, noSource); err != nil {
		t.Errorf("bob's TOTP code for bob afterwards: %v", err)
	}
	if _, err := a.auth.UseRecoveryCode(t.Context(), "bob", bob.codes[0].Reveal(), noSource); err != nil {
		t.Errorf("bob's recovery code for bob afterwards: %v", err)
	}
}

// A pending login lives at most session.PendingLifetime (TOT-09's 5
// minutes): after it, the right code completes nothing, and is not used
// up.
func TestSessionPendingExpires(t *testing.T) {
	if session.PendingLifetime > 5*time.Minute {
		t.Errorf("session.PendingLifetime is %v, more than TOT-09's 5 minutes", session.PendingLifetime)
	}
	a := newSessionApp(t, ratelimit.LockoutPolicy{})
	e := a.enrollFirst("alice")
	pending := a.login("alice", true)
	a.clock.Advance(session.PendingLifetime + time.Second)
	code := appCode(t, e.secret, a.clock.Now())
	var err error
	after := a.in(pending, func(ctx context.Context) { err = a.auth.VerifyLogin(ctx, code, noSource) })
	if !errors.Is(err, session.ErrNotLoggedIn) {
		t.Fatalf("VerifyLogin on an expired pending login: %v, want session.ErrNotLoggedIn", err)
	}
	if _, ok := a.info(after); ok {
		t.Fatal("the expired pending login is still a session")
	}
	var rerr error
	a.in(pending, func(ctx context.Context) { _, rerr = a.auth.RecoverLogin(ctx, e.codes[0].Reveal(), noSource) })
	if !errors.Is(rerr, session.ErrNotLoggedIn) {
		t.Fatalf("RecoverLogin on an expired pending login: %v, want session.ErrNotLoggedIn", rerr)
	}
	// A new login takes the same code: the expired one used up nothing.
	fresh := a.login("alice", true)
	a.in(fresh, func(ctx context.Context) { err = a.auth.VerifyLogin(ctx, code, noSource) })
	if err != nil {
		t.Errorf("the same code in a new login: %v", err)
	}
}

// A right password followed by session.Config.MaxSecondFactorFailures
// (default 3) wrong codes ends the login and notifies the user once of a
// partial authentication, with an audit event (TOT-13).
func TestSessionPartialAuthentication(t *testing.T) {
	a := newSessionApp(t, ratelimit.LockoutPolicy{})
	if got := a.m.Config().MaxSecondFactorFailures; got != 3 || session.DefaultMaxSecondFactorFailures != 3 {
		t.Fatalf("MaxSecondFactorFailures %d (default %d), want 3", got, session.DefaultMaxSecondFactorFailures)
	}
	e := a.enrollFirst("alice")
	pending := a.login("alice", true)
	a.events.reset()
	wrong := notACode(t, a.clock.Now(), e.secret)
	c := pending
	for i := 1; i <= 3; i++ {
		var err error
		c = a.in(c, func(ctx context.Context) { err = a.auth.VerifyLogin(ctx, wrong, noSource) })
		if !rejected(err) {
			t.Fatalf("wrong code %d: %v, want rejected", i, err)
		}
		ended := errors.Is(err, session.ErrTooManySecondFactorFailures)
		if ended != (i == 3) || (c == "") != (i == 3) {
			t.Fatalf("wrong code %d: login ended %v, cookie %q", i, ended, c)
		}
		if got := len(a.events.of(keyhold.PartialAuthentication)); got != 0 && i < 3 {
			t.Fatalf("notified after %d wrong codes", i)
		}
	}
	partial := a.events.of(keyhold.PartialAuthentication)
	if len(partial) != 1 || partial[0].UserID != "alice" {
		t.Fatalf("Notifier heard %+v, want one %s for alice", a.events.kinds(), keyhold.PartialAuthentication)
	}
	if got := len(a.logRecords("authn_second_factor_fail_max")); got != 1 {
		t.Errorf("%d authn_second_factor_fail_max records, want 1", got)
	}
	if got := a.status(pending, a.m.RequireFirstFactor); got != 401 {
		t.Errorf("the ended login: %d, want 401", got)
	}
	// A 4th try on the ended login finds no session, and is not told
	// again.
	var err error
	a.in(pending, func(ctx context.Context) {
		err = a.auth.VerifyLogin(ctx, appCode(t, e.secret, a.clock.Now()), noSource)
	})
	if !errors.Is(err, session.ErrNotLoggedIn) {
		t.Errorf("VerifyLogin on the ended login: %v, want session.ErrNotLoggedIn", err)
	}
	if got := len(a.events.of(keyhold.PartialAuthentication)); got != 1 {
		t.Errorf("%d partial-authentication notices, want 1", got)
	}
}

// change is one of the changes to a user's second factors that need a
// step-up (TOT-08).
type change struct {
	name string
	// kind is what the Notifier hears when it is made.
	kind keyhold.EventKind
	do   func(ctx context.Context, a *sessionApp, second enrolled) error
}

var changes = []change{
	{"Confirm", keyhold.SecondFactorEnabled, func(ctx context.Context, a *sessionApp, _ enrolled) error {
		e, err := a.auth.Begin(ctx, "alice", "alice@example.com")
		if err != nil {
			return err
		}
		_, err = a.auth.Confirm(ctx, "alice", e.Token, appCode(a.t, e.Secret(), a.clock.Now()), noSource, totp.ConfirmOptions{Name: "tablet"})
		return err
	}},
	{"Remove", keyhold.SecondFactorRemoved, func(ctx context.Context, a *sessionApp, second enrolled) error {
		return a.auth.Remove(ctx, "alice", second.id)
	}},
	{"RegenerateRecoveryCodes", keyhold.LoginRecoveryCodesRegenerated, func(ctx context.Context, a *sessionApp, _ enrolled) error {
		_, err := a.auth.RegenerateRecoveryCodes(ctx, "alice")
		return err
	}},
}

// Enrolling, removing and regenerating need a fresh, complete,
// multi-factor session of the user: a session older than StepUpMaxAge,
// a password-only session of a user who has TOTP, a pending login and
// another user's session get ErrStepUpRequired and change nothing. A
// fresh multi-factor session gets the change, which ends the user's
// other sessions, re-issues the current one and notifies the user
// (TOT-08).
func TestSessionChangesNeedStepUp(t *testing.T) {
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			a := newSessionApp(t, ratelimit.LockoutPolicy{})
			first := a.enrollFirst("alice")
			second, _ := a.enrollIn(a.mfaLogin("alice", first), "alice")
			bob := a.enrollFirst("bob")
			refused := map[string]func() string{
				"stale": func() string {
					s := a.mfaLogin("alice", first)
					a.clock.Advance(totp.DefaultStepUpMaxAge + time.Second)
					return s
				},
				"password only":     func() string { return a.login("alice", false) },
				"pending":           func() string { return a.login("alice", true) },
				"another user's":    func() string { return a.mfaLogin("bob", bob) },
				"no session at all": func() string { return "" },
			}
			for name, open := range refused {
				cookie := open()
				before := a.ids("alice")
				a.events.reset()
				var err error
				a.in(cookie, func(ctx context.Context) { err = c.do(ctx, a, second) })
				if !errors.Is(err, totp.ErrStepUpRequired) {
					t.Errorf("%s session: %v, want ErrStepUpRequired", name, err)
				}
				if after := a.ids("alice"); !slices.Equal(before, after) || len(a.events.kinds()) != 0 {
					t.Errorf("%s session: authenticators %v → %v, events %v", name, before, after, a.events.kinds())
				}
			}

			other := a.mfaLogin("alice", first)
			current := a.mfaLogin("alice", first)
			a.events.reset()
			var err error
			after := a.in(current, func(ctx context.Context) { err = c.do(ctx, a, second) })
			if err != nil {
				t.Fatalf("fresh multi-factor session: %v", err)
			}
			if after == "" || after == current {
				t.Errorf("the current session was not re-issued")
			}
			if got := a.status(after, a.m.RequireMultiFactor); got != 200 {
				t.Errorf("the current session after the change: %d", got)
			}
			if got := a.status(other, a.m.RequireLogin); got != 401 {
				t.Errorf("the user's other session after the change: %d, want 401 (revoked)", got)
			}
			if got := a.events.of(c.kind); len(got) != 1 || got[0].UserID != "alice" {
				t.Errorf("Notifier heard %v, want one %s for alice", a.events.kinds(), c.kind)
			}
		})
	}
}

// With two authenticators, removing one makes its codes fail while the
// other's still work, for Verify and at login (TOT-15).
func TestSessionRemoveOneOfTwo(t *testing.T) {
	a := newSessionApp(t, ratelimit.LockoutPolicy{})
	phone := a.enrollFirst("alice")
	tablet, _ := a.enrollIn(a.mfaLogin("alice", phone), "alice")
	var err error
	a.in(a.mfaLogin("alice", phone), func(ctx context.Context) { err = a.auth.Remove(ctx, "alice", phone.id) })
	if err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := a.ids("alice"); !slices.Equal(got, []string{tablet.id}) {
		t.Fatalf("authenticators after Remove: %v, want [%s]", got, tablet.id)
	}
	a.clock.Advance(period)
	now := a.clock.Now()
	if err := a.auth.Verify(t.Context(), "alice", appCode(t, phone.secret, now), noSource); !rejected(err) || errors.Is(err, totp.ErrReplayed) {
		t.Errorf("the removed authenticator's code: %v, want a wrong code", err)
	}
	pending := a.login("alice", true)
	a.in(pending, func(ctx context.Context) { err = a.auth.VerifyLogin(ctx, appCode(t, phone.secret, now), noSource) })
	if !rejected(err) {
		t.Errorf("the removed authenticator's code at login: %v, want rejected", err)
	}
	a.in(pending, func(ctx context.Context) { err = a.auth.VerifyLogin(ctx, appCode(t, tablet.secret, now), noSource) })
	if err != nil {
		t.Errorf("the other authenticator's code at login: %v", err)
	}
	// The recovery codes stay too.
	if st, err := a.auth.RecoveryCodes(t.Context(), "alice"); err != nil || st.Remaining != len(phone.codes) {
		t.Errorf("recovery codes after Remove: %+v, %v", st, err)
	}
}

// A login pending its second factor is no step-up, even for a user
// without TOTP (one whose pending factor is a passkey, say): it cannot
// enroll a first authenticator, which would let the password alone
// choose the second factor (TOT-08).
func TestSessionPendingCannotEnroll(t *testing.T) {
	a := newSessionApp(t, ratelimit.LockoutPolicy{})
	pending := a.login("carol", true)
	var err error
	a.in(pending, func(ctx context.Context) {
		e, berr := a.auth.Begin(ctx, "carol", "carol@example.com")
		if berr != nil {
			err = berr
			return
		}
		_, err = a.auth.Confirm(ctx, "carol", e.Token, appCode(t, e.Secret(), a.clock.Now()), noSource, totp.ConfirmOptions{})
	})
	if !errors.Is(err, totp.ErrStepUpRequired) {
		t.Fatalf("Confirm in a pending login: %v, want ErrStepUpRequired", err)
	}
	if got := a.ids("carol"); len(got) != 0 {
		t.Fatalf("authenticators enrolled from a pending login: %v", got)
	}
}

// With Config.OtherFactors reporting another second factor (a passkey),
// even the first enrollment needs a multi-factor session: the password
// alone must not enroll an authenticator, be re-issued multi-factor by
// Confirm, and then add a passkey with that session.
func TestSessionOtherFactorsNeedMultiFactor(t *testing.T) {
	store := memstore.New()
	clock := newStepClock()
	m, err := session.New(store, session.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	hasPasskey := map[string]bool{"alice": true}
	f := newAuth(t, store, clock, authOptions{policy: ratelimit.DefaultLockoutPolicy(), sessions: m,
		otherFactors: func(_ context.Context, userID string) (bool, error) { return hasPasskey[userID], nil }})
	a := &sessionApp{authFixture: f, t: t, m: m, events: &eventLog{}, logs: &testkit.SyncBuffer{}}
	confirm := func(cookie, user string) error {
		var err error
		a.in(cookie, func(ctx context.Context) {
			var e *totp.Enrollment
			if e, err = a.auth.Begin(ctx, user, user+"@example.com"); err != nil {
				return
			}
			_, err = a.auth.Confirm(ctx, user, e.Token, appCode(t, e.Secret(), clock.Now()), noSource, totp.ConfirmOptions{Name: "phone"})
		})
		return err
	}
	if err := confirm(a.login("alice", false), "alice"); !errors.Is(err, totp.ErrStepUpRequired) {
		t.Fatalf("alice (a passkey) enrolls with the password alone: %v, want ErrStepUpRequired", err)
	}
	if ids := a.ids("alice"); len(ids) != 0 {
		t.Fatalf("alice's authenticators after the refusal: %v", ids)
	}
	passkey := a.in("", func(ctx context.Context) {
		err = m.Login(ctx, "alice", session.LoginOptions{Factor: session.FactorPasskey})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := confirm(passkey, "alice"); err != nil {
		t.Fatalf("alice enrolls from a passkey session: %v", err)
	}
	if err := confirm(a.login("bob", false), "bob"); err != nil {
		t.Fatalf("bob (no other factor) enrolls with the password: %v", err)
	}
}
