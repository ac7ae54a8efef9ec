package passkey

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
)

// TestRaceStepUpPendingAttemptsBounded: FinishStepUp on a login pending its
// second factor counts the attempt (session.Manager.SecondFactorAttempt)
// before it checks the answer, so answers in flight together get no more
// checks than session.Config.MaxSecondFactorFailures allows. Forced
// interleaving: each step-up has its own ceremony (begun once the one
// before has taken its challenge) and is held at its read of the passkey
// record, the first step of the check; with the default limit of three,
// three are held there, and the fourth is refused with
// session.ErrTooManySecondFactorFailures without reaching it (the login is
// ended). Counting only the failures afterwards (SecondFactorFailed) would
// let the fourth, and any number more, be checked.
func TestRaceStepUpPendingAttemptsBounded(t *testing.T) {
	h, _ := rcHarness(t)
	a := newBrowser()
	h.login(a, "alice", true)
	if _, err := h.register(a, "Laptop"); err != nil {
		t.Fatal(err)
	}
	b := newBrowser()
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		if err := h.sessions.Login(r.Context(), "alice", session.LoginOptions{SecondFactorPending: true}); err != nil {
			t.Fatal(err)
		}
	})
	info := h.current(b)
	if !info.SecondFactorPending {
		t.Fatalf("the login is not pending: %+v", info)
	}
	// A guessed answer: the recorded one with its signature altered.
	bad := h.cer.Assertions[0].Response
	bad.Response.Signature = append([]byte(nil), bad.Response.Signature...)
	bad.Response.Signature[len(bad.Response.Signature)-1] ^= 1
	response := mustJSON(t, bad)

	type outcome struct{ err error }
	limit := session.DefaultMaxSecondFactorFailures
	var pauses []*rcPause
	var dones []chan outcome
	for i := 0; i <= limit; i++ {
		h.do(b, func(w http.ResponseWriter, r *http.Request) {
			if _, err := h.m.BeginStepUp(r); err != nil {
				t.Fatalf("BeginStepUp %d: %v", i+1, err)
			}
		})
		h.rewrite(sessionChallengeID(ceremonyStepUp, info.UserID, info.Ref), ceremonyStepUp, info.UserID, info.Ref,
			h.cer.Assertions[0].Challenge, nil, nil)
		p := newPause("get")
		t.Cleanup(p.free)
		done := make(chan outcome, 1)
		// Each request carries the cookies b has now: a held request
		// sets none until it is let go.
		c := &browser{cookies: map[string]*http.Cookie{}}
		for k, v := range b.cookies {
			c.cookies[k] = v
		}
		go func() {
			var err error
			h.doCtx(rcWith(context.Background(), p.gate), c, func(w http.ResponseWriter, r *http.Request) {
				_, err = h.m.FinishStepUp(r, response, ratelimit.Source{})
			})
			done <- outcome{err}
		}()
		pauses, dones = append(pauses, p), append(dones, done)
		if i < limit {
			rcReach(t, p.reached, done, "step-up within the limit")
			continue
		}
		// The one past the limit: it must end without a check.
		select {
		case <-p.reached:
			t.Fatalf("step-up %d of a pending login is checked while %d are in flight (limit %d): the attempt is not counted before the check",
				i+1, limit, limit)
		case <-time.After(rcTimeout):
			t.Fatalf("step-up %d past the limit: no answer within %v", i+1, rcTimeout)
		case o := <-done:
			if !errors.Is(o.err, session.ErrTooManySecondFactorFailures) {
				t.Fatalf("step-up %d past the limit: %v, want session.ErrTooManySecondFactorFailures", i+1, o.err)
			}
		}
	}
	// The login is over; the held answers, let go, are refused and
	// complete nothing.
	for i, p := range pauses[:limit] {
		p.free()
		o := rcWait(t, dones[i], "held step-up")
		if !errors.Is(o.err, ErrLoginFailed) {
			t.Fatalf("held step-up %d: %v, want ErrLoginFailed", i+1, o.err)
		}
	}
	var ok bool
	h.do(b, func(w http.ResponseWriter, r *http.Request) { _, ok = h.sessions.Current(r.Context()) })
	if ok {
		t.Fatal("the pending login outlived more step-ups than its limit")
	}
}
