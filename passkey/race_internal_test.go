package passkey

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// Concurrency tests with forced interleavings: the stores below call a
// gate carried in the request's context at fixed points (after a read of
// the passkey record, before a write of it, before a challenge is taken),
// and a gate holds one call there until the test lets it go.

type rcGateKey struct{}

// rcGate is called with the point a store call reached: "get" (after
// GetPasskeys read), "put" (before PutPasskeys), "stored" (after a
// PutPasskeys that succeeded), "take" (before TakeChallenge).
type rcGate func(point string)

func rcWith(ctx context.Context, g rcGate) context.Context {
	return context.WithValue(ctx, rcGateKey{}, g)
}

func rcAt(ctx context.Context, point string) {
	if g, ok := ctx.Value(rcGateKey{}).(rcGate); ok {
		g(point)
	}
}

// rcPut is one PutPasskeys call as rcStore saw it.
type rcPut struct {
	expect uint64
	err    error
	count  uint32 // the first credential's counter written (when stored)
}

// rcStore is a PasskeyStore that calls the context's gate and records
// every put.
type rcStore struct {
	storage.PasskeyStore
	mu   sync.Mutex
	puts []rcPut
}

func (s *rcStore) GetPasskeys(ctx context.Context, userID string) (storage.PasskeyRecord, error) {
	sr, err := s.PasskeyStore.GetPasskeys(ctx, userID)
	rcAt(ctx, "get")
	return sr, err
}

func (s *rcStore) PutPasskeys(ctx context.Context, r storage.PasskeyRecord, expect uint64) error {
	rcAt(ctx, "put")
	err := s.PasskeyStore.PutPasskeys(ctx, r, expect)
	if err == nil {
		rcAt(ctx, "stored")
	}
	p := rcPut{expect: expect, err: err}
	if rec, derr := decodeRecord(r); derr == nil && len(rec.creds) > 0 {
		p.count = rec.creds[0].signCount
	}
	s.mu.Lock()
	s.puts = append(s.puts, p)
	s.mu.Unlock()
	return err
}

func (s *rcStore) putsSince(n int) []rcPut {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rcPut(nil), s.puts[n:]...)
}

func (s *rcStore) numPuts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.puts)
}

// rcChallenges is a ChallengeStore that calls the context's gate.
type rcChallenges struct {
	storage.ChallengeStore
}

func (c rcChallenges) TakeChallenge(ctx context.Context, id []byte) (storage.Challenge, error) {
	rcAt(ctx, "take")
	return c.ChallengeStore.TakeChallenge(ctx, id)
}

// rcTimeout bounds each wait of a forced interleaving: a change that no
// longer brings a held call to its point fails the test instead of
// hanging it (re-aim the interleaving).
const rcTimeout = 10 * time.Second

// rcMFA is the factors of a password and TOTP login: a multi-factor
// session, which removing a passkey needs.
const rcMFA = session.FactorPassword | session.FactorTOTP

// rcWait receives from ch, or fails the test after rcTimeout.
func rcWait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(rcTimeout):
		t.Fatalf("%s: nothing within %v", what, rcTimeout)
		panic("unreachable")
	}
}

// rcReach waits until reached is closed (a call is held at its point);
// it fails the test if the call's goroutine finishes first (done), so the
// interleaving did not happen, or after rcTimeout.
func rcReach[T any](t *testing.T, reached <-chan struct{}, done <-chan T, what string) {
	t.Helper()
	select {
	case <-reached:
	case v := <-done:
		t.Fatalf("%s: finished without reaching its point (%+v): the forced interleaving did not happen", what, v)
	case <-time.After(rcTimeout):
		t.Fatalf("%s: not at its point within %v: the forced interleaving did not happen", what, rcTimeout)
	}
}

// rcPause holds the first call that reaches its point until released.
type rcPause struct {
	point   string
	once    sync.Once
	reached chan struct{}
	release chan struct{}
	freed   sync.Once
}

func newPause(point string) *rcPause {
	return &rcPause{point: point, reached: make(chan struct{}), release: make(chan struct{})}
}

// free lets the held call go on (once; later calls do nothing).
func (p *rcPause) free() { p.freed.Do(func() { close(p.release) }) }

// rcWaitPause is rcReach for p; the held call is let go when the test ends,
// however it ends.
func rcWaitPause[T any](t *testing.T, p *rcPause, done <-chan T, what string) {
	t.Helper()
	t.Cleanup(p.free)
	rcReach(t, p.reached, done, what)
}

func (p *rcPause) gate(point string) {
	if point != p.point {
		return
	}
	first := false
	p.once.Do(func() { first = true })
	if first {
		close(p.reached)
		<-p.release
	}
}

// rcHarness is a harness whose Manager uses the gated stores.
func rcHarness(t *testing.T) (*harness, *rcStore) {
	t.Helper()
	var rs *rcStore
	h := newHarness(t, func(c *Config) {
		rs = &rcStore{PasskeyStore: c.Store}
		c.Store = rs
		c.Challenges = rcChallenges{ChallengeStore: c.Challenges}
	})
	return h, rs
}

// doCtx is harness.do with the request's context derived from ctx. It
// does not fail the test, so goroutines may call it.
func (h *harness) doCtx(ctx context.Context, b *browser, fn func(w http.ResponseWriter, r *http.Request)) {
	r := httptest.NewRequest(http.MethodPost, "http://"+h.host+"/", nil).WithContext(ctx)
	r.Host = h.host
	r.RemoteAddr = "127.0.0.1:40000"
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.sessions.Handler(http.HandlerFunc(fn)).ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
}

// rcBeginLogin begins a login in b for recorded assertion i.
func rcBeginLogin(h *harness, b *browser, i int) {
	h.t.Helper()
	h.do(b, func(w http.ResponseWriter, r *http.Request) {
		if _, err := h.m.BeginLogin(w, r); err != nil {
			h.t.Fatalf("BeginLogin: %v", err)
		}
	})
	token, err := base64.RawURLEncoding.DecodeString(b.cookies[h.m.loginCookieName()].Value)
	if err != nil {
		h.t.Fatal(err)
	}
	h.rewrite(loginChallengeID(token), ceremonyLogin, "", "", h.cer.Assertions[i].Challenge, nil, nil)
}

// rcFinishLogin finishes b's login with recorded assertion i, in ctx.
func rcFinishLogin(ctx context.Context, h *harness, b *browser, i int) (LoginResult, error) {
	var res LoginResult
	var err error
	response, jerr := json.Marshal(h.cer.Assertions[i].Response)
	if jerr != nil {
		return res, jerr
	}
	h.doCtx(ctx, b, func(w http.ResponseWriter, r *http.Request) {
		res, err = h.m.FinishLogin(w, r, response, ratelimit.Source{}, LoginOptions{})
	})
	return res, err
}

// rcResult is a goroutine's outcome.
type rcResult struct {
	res LoginResult
	err error
}

// rcGo finishes b's login with assertion i in a goroutine held by p.
func rcGo(h *harness, b *browser, i int, p *rcPause) chan rcResult {
	done := make(chan rcResult, 1)
	go func() {
		res, err := rcFinishLogin(rcWith(context.Background(), p.gate), h, b, i)
		done <- rcResult{res, err}
	}()
	return done
}

// TestRaceRemoveDuringLogin: a passkey removed (by a password and TOTP
// session) between a login's read of the record and its write (or
// between its check and its write) does not log in, and does not come
// back.
func TestRaceRemoveDuringLogin(t *testing.T) {
	for _, point := range []string{"get", "put"} {
		t.Run(point, func(t *testing.T) {
			h, _ := rcHarness(t)
			a := newBrowser()
			stLogin(h, a, "alice", rcMFA, false, true)
			cred, err := h.register(a, "Laptop")
			if err != nil {
				t.Fatal(err)
			}
			l := newBrowser()
			rcBeginLogin(h, l, 0)
			p := newPause(point)
			done := rcGo(h, l, 0, p)
			rcWaitPause(t, p, done, "the login")
			var rerr error
			h.do(a, func(w http.ResponseWriter, r *http.Request) { rerr = h.m.Remove(r, "alice", cred.ID) })
			p.free()
			got := rcWait(t, done, "the login")
			if rerr != nil {
				t.Fatalf("Remove: %v", rerr)
			}
			if !errors.Is(got.err, ErrLoginFailed) {
				t.Fatalf("login racing the removal: %+v, %v, want ErrLoginFailed", got.res, got.err)
			}
			if h.current(l).UserID != "" {
				t.Fatal("the removed passkey logged in")
			}
			if _, rec := stStored(h, "alice"); len(rec.creds) != 0 {
				t.Fatalf("the removed passkey came back: %d credentials", len(rec.creds))
			}
			if _, err := h.store.UserByCredential(context.Background(), h.cer.Registration.Response.RawID); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("UserByCredential: %v", err)
			}
		})
	}
}

// TestRaceTwoLoginsSameCredential: two logins with one credential
// (counts 3 and 2) that read the same record: one write wins at that
// version, the other re-reads; the stored counter never goes backwards,
// and the lower count is refused once the higher is stored.
func TestRaceTwoLoginsSameCredential(t *testing.T) {
	for _, highFirst := range []bool{true, false} {
		name := "count 3 first"
		if !highFirst {
			name = "count 2 first"
		}
		t.Run(name, func(t *testing.T) {
			h, rs := rcHarness(t)
			a := newBrowser()
			stLogin(h, a, "alice", 0, false, true)
			if _, err := h.register(a, "Laptop"); err != nil {
				t.Fatal(err)
			}
			before, _ := stStored(h, "alice")
			hi, lo := newBrowser(), newBrowser()
			rcBeginLogin(h, hi, 1) // count 3
			rcBeginLogin(h, lo, 0) // count 2
			nPuts := rs.numPuts()
			phi, plo := newPause("get"), newPause("get")
			dhi, dlo := rcGo(h, hi, 1, phi), rcGo(h, lo, 0, plo)
			rcWaitPause(t, phi, dhi, "the count 3 login")
			rcWaitPause(t, plo, dlo, "the count 2 login") // both read the record at the same version
			var rhi, rlo rcResult
			if highFirst {
				phi.free()
				rhi = rcWait(t, dhi, "the count 3 login")
				plo.free()
				rlo = rcWait(t, dlo, "the count 2 login")
			} else {
				plo.free()
				rlo = rcWait(t, dlo, "the count 2 login")
				phi.free()
				rhi = rcWait(t, dhi, "the count 3 login")
			}
			if rhi.err != nil {
				t.Fatalf("count 3: %v", rhi.err)
			}
			if highFirst {
				if !errors.Is(rlo.err, ErrLoginFailed) || !errors.Is(rlo.err, ErrPossibleClone) {
					t.Fatalf("count 2 after 3: %v, want ErrLoginFailed and ErrPossibleClone", rlo.err)
				}
				if h.current(lo).UserID != "" {
					t.Fatal("the refused login has a session")
				}
			} else if rlo.err != nil {
				t.Fatalf("count 2 first: %v", rlo.err)
			}
			if _, rec := stStored(h, "alice"); rec.creds[0].signCount != 3 {
				t.Fatalf("stored count %d, want 3", rec.creds[0].signCount)
			}
			won, last := 0, uint32(0)
			for _, p := range rs.putsSince(nPuts) {
				if p.expect == before.Version && p.err == nil {
					won++
				}
				if p.err == nil {
					if p.count < last {
						t.Fatalf("stored count went back from %d to %d", last, p.count)
					}
					last = p.count
				}
			}
			if won != 1 {
				t.Fatalf("%d writes over version %d succeeded, want 1: %+v", won, before.Version, rs.putsSince(nPuts))
			}
		})
	}
}

// TestRaceRenameAndLogin: a rename and a login that read the same record
// both keep their change, whichever writes first.
func TestRaceRenameAndLogin(t *testing.T) {
	for _, renameFirst := range []bool{true, false} {
		name := "rename writes first"
		if !renameFirst {
			name = "login writes first"
		}
		t.Run(name, func(t *testing.T) {
			h, _ := rcHarness(t)
			a := newBrowser()
			stLogin(h, a, "alice", 0, false, true)
			cred, err := h.register(a, "Laptop")
			if err != nil {
				t.Fatal(err)
			}
			l := newBrowser()
			rcBeginLogin(h, l, 0)
			rename := func(ctx context.Context) error {
				var err error
				h.doCtx(ctx, a, func(w http.ResponseWriter, r *http.Request) { err = h.m.Rename(r, "alice", cred.ID, "Renamed") })
				return err
			}
			if renameFirst {
				p := newPause("get")
				done := rcGo(h, l, 0, p)
				rcWaitPause(t, p, done, "the login")
				if err := rename(context.Background()); err != nil {
					t.Fatalf("Rename: %v", err)
				}
				p.free()
				if got := rcWait(t, done, "the login"); got.err != nil {
					t.Fatalf("login: %v", got.err)
				}
			} else {
				p := newPause("get")
				done := make(chan error, 1)
				go func() { done <- rename(rcWith(context.Background(), p.gate)) }()
				rcWaitPause(t, p, done, "the rename")
				if _, err := rcFinishLogin(context.Background(), h, l, 0); err != nil {
					t.Fatalf("login: %v", err)
				}
				p.free()
				if err := rcWait(t, done, "the rename"); err != nil {
					t.Fatalf("Rename: %v", err)
				}
			}
			_, rec := stStored(h, "alice")
			if c := rec.creds[0]; c.name != "Renamed" || c.signCount != 2 || c.lastUsed.IsZero() {
				t.Fatalf("stored name %q, count %d, last used %v: a change was lost", c.name, c.signCount, c.lastUsed)
			}
		})
	}
}

// TestRaceChallengeTakenTwice: two Finish calls with one login ceremony's
// cookie: exactly one proceeds, the other gets ErrChallenge, whether the
// second comes while the first is past its take or both take at once.
func TestRaceChallengeTakenTwice(t *testing.T) {
	setup := func(t *testing.T) (*harness, *browser, *browser) {
		h, _ := rcHarness(t)
		a := newBrowser()
		stLogin(h, a, "alice", 0, false, true)
		if _, err := h.register(a, "Laptop"); err != nil {
			t.Fatal(err)
		}
		b1 := newBrowser()
		rcBeginLogin(h, b1, 0)
		b2 := &browser{cookies: maps.Clone(b1.cookies)} // the same cookie, replayed
		return h, b1, b2
	}
	t.Run("second while the first is in flight", func(t *testing.T) {
		h, b1, b2 := setup(t)
		p := newPause("get") // past the take, before the record is read
		done := rcGo(h, b1, 0, p)
		rcWaitPause(t, p, done, "the first login")
		_, err2 := rcFinishLogin(context.Background(), h, b2, 0)
		p.free()
		got := rcWait(t, done, "the first login")
		if got.err != nil || !errors.Is(err2, ErrChallenge) {
			t.Fatalf("first %v, second %v: want nil and ErrChallenge", got.err, err2)
		}
		if h.current(b1).UserID != "alice" || h.current(b2).UserID != "" {
			t.Fatal("sessions: want the first logged in, the second not")
		}
	})
	t.Run("both take at once", func(t *testing.T) {
		h, b1, b2 := setup(t)
		// A barrier at "take" that gives up after rcTimeout (then the
		// test fails) rather than hang if one of them never takes.
		var arrived atomic.Int32
		var missed atomic.Bool
		both := make(chan struct{})
		gate := rcGate(func(point string) {
			if point != "take" {
				return
			}
			if arrived.Add(1) == 2 {
				close(both)
			}
			select {
			case <-both:
			case <-time.After(rcTimeout):
				missed.Store(true)
			}
		})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, b := range []*browser{b1, b2} {
			wg.Go(func() { _, errs[i] = rcFinishLogin(rcWith(context.Background(), gate), h, b, 0) })
		}
		wg.Wait()
		if missed.Load() {
			t.Fatalf("the two Finish calls never took the challenge together (%v)", errs)
		}
		ok, gone := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrChallenge):
				gone++
			}
		}
		if ok != 1 || gone != 1 {
			t.Fatalf("results %v: want one nil, one ErrChallenge", errs)
		}
	})
}

// TestRaceRemoveAfterLoginStored: a passkey removed after a login with
// it stored its counter, but before the login's session exists: once
// both are done, no session of the removed passkey is left (Remove
// revokes the user's other sessions; one made after that must not
// survive either). The remover is a password and TOTP session.
func TestRaceRemoveAfterLoginStored(t *testing.T) {
	h, _ := rcHarness(t)
	a := newBrowser()
	stLogin(h, a, "alice", rcMFA, false, true)
	cred, err := h.register(a, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	l := newBrowser()
	rcBeginLogin(h, l, 0)
	p := newPause("stored")
	done := rcGo(h, l, 0, p)
	rcWaitPause(t, p, done, "the login")
	var rerr error
	h.do(a, func(w http.ResponseWriter, r *http.Request) { rerr = h.m.Remove(r, "alice", cred.ID) })
	p.free()
	got := rcWait(t, done, "the login")
	if rerr != nil {
		t.Fatalf("Remove: %v", rerr)
	}
	if info := h.current(l); info.UserID != "" {
		t.Fatalf("login %v: a session of the removed passkey outlived its removal: %+v", got.err, info)
	}
	if !errors.Is(got.err, ErrLoginFailed) {
		t.Fatalf("login racing the removal: %v, want ErrLoginFailed", got.err)
	}
}

// TestRaceRemoveDuringUnlockSetUp: a passkey removed while an unlock
// ceremony that sets it up (vault unlocked) is between its assertion
// check and its slot's creation leaves no vault slot behind: a slot
// without its passkey could not be listed or removed.
func TestRaceRemoveDuringUnlockSetUp(t *testing.T) {
	h, _ := rcHarness(t)
	ctx := context.Background()
	if _, err := h.vault.Create(ctx, "alice", []byte(testPassphrase)); err != nil {
		t.Fatal(err)
	}
	a := newBrowser()
	stLogin(h, a, "alice", 0, false, false) // vault locked: no slot at registration
	cred, err := h.register(a, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	stUnlockSession(h, a, "alice")
	info := h.current(a)
	h.do(a, func(w http.ResponseWriter, r *http.Request) {
		if _, err := h.m.BeginUnlock(r); err != nil {
			t.Fatal(err)
		}
	})
	h.rewrite(sessionChallengeID(ceremonyUnlock, info.UserID, info.Ref), ceremonyUnlock, info.UserID, info.Ref, h.cer.Assertions[0].Challenge, nil, nil)
	response, err := json.Marshal(h.cer.Assertions[0].Response)
	if err != nil {
		t.Fatal(err)
	}
	p := newPause("stored")
	done := make(chan error, 1)
	go func() {
		var err error
		h.doCtx(rcWith(ctx, p.gate), a, func(w http.ResponseWriter, r *http.Request) {
			_, err = h.m.FinishUnlock(r, response, ratelimit.Source{})
		})
		done <- err
	}()
	rcWaitPause(t, p, done, "the unlock set-up")
	rm := newBrowser()
	stLogin(h, rm, "alice", rcMFA, false, false) // a multi-factor session, vault locked
	var rerr error
	h.do(rm, func(w http.ResponseWriter, r *http.Request) { rerr = h.m.Remove(r, "alice", cred.ID) })
	p.free()
	uerr := rcWait(t, done, "the unlock set-up")
	if rerr != nil {
		t.Fatalf("Remove: %v", rerr)
	}
	sid, _ := vault.SecretSlotID(h.cer.Registration.Response.RawID)
	slots, err := h.vault.Slots(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if s.ID == sid {
			t.Fatalf("unlock set-up %v: the removed passkey's vault slot was added after its removal", uerr)
		}
	}
	if !errors.Is(uerr, ErrUnlockFailed) {
		t.Fatalf("set-up racing the removal: %v, want ErrUnlockFailed", uerr)
	}
}

// TestRaceRemoveDuringRegistration: a passkey removed between its
// registration's write and the creation of its vault slot (vault
// unlocked) leaves no slot behind.
func TestRaceRemoveDuringRegistration(t *testing.T) {
	h, _ := rcHarness(t)
	ctx := context.Background()
	a := newBrowser()
	stLogin(h, a, "alice", 0, false, true)
	info := h.current(a)
	h.do(a, func(w http.ResponseWriter, r *http.Request) {
		if _, err := h.m.BeginRegistration(r, "alice@example.test"); err != nil {
			t.Fatal(err)
		}
	})
	reg := h.cer.Registration
	h.rewrite(sessionChallengeID(ceremonyRegister, info.UserID, info.Ref), ceremonyRegister, info.UserID, info.Ref, reg.Challenge, reg.UserID, reg.PRFSalt)
	response, err := json.Marshal(reg.Response)
	if err != nil {
		t.Fatal(err)
	}
	p := newPause("stored")
	type outcome struct {
		cred Credential
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		h.doCtx(rcWith(ctx, p.gate), a, func(w http.ResponseWriter, r *http.Request) {
			o.cred, o.err = h.m.FinishRegistration(r, response, "Laptop")
		})
		done <- o
	}()
	rcWaitPause(t, p, done, "the registration")
	rm := newBrowser()
	stLogin(h, rm, "alice", rcMFA, false, false) // a multi-factor session, vault locked
	var rerr error
	h.do(rm, func(w http.ResponseWriter, r *http.Request) {
		rerr = h.m.Remove(r, "alice", encodeID(reg.Response.RawID))
	})
	p.free()
	got := rcWait(t, done, "the registration")
	if rerr != nil {
		t.Fatalf("Remove: %v", rerr)
	}
	if got.cred.CanUnlock {
		t.Errorf("registration reports CanUnlock for a passkey removed meanwhile: %+v", got.cred)
	}
	sid, _ := vault.SecretSlotID(reg.Response.RawID)
	slots, err := h.vault.Slots(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if s.ID == sid {
			t.Fatalf("registration %v: the removed passkey's vault slot was added after its removal", got.err)
		}
	}
}

// rcNth holds the nth call that reaches point (n from 1).
type rcNth struct {
	mu      sync.Mutex
	point   string
	n       int
	reached chan struct{}
	release chan struct{}
	freed   sync.Once
}

func newNth(point string, n int) *rcNth {
	return &rcNth{point: point, n: n, reached: make(chan struct{}), release: make(chan struct{})}
}

// free lets the held call go on (once; later calls do nothing).
func (p *rcNth) free() { p.freed.Do(func() { close(p.release) }) }

func (p *rcNth) gate(point string) {
	if point != p.point {
		return
	}
	p.mu.Lock()
	p.n--
	hit := p.n == 0
	p.mu.Unlock()
	if hit {
		close(p.reached)
		<-p.release
	}
}

// TestRaceRemoveSlotCheckVsSetUp: Remove looked for the passkey's vault
// slot (none yet) and is about to write the record without the passkey
// when an unlock ceremony sets the passkey up (adds its slot): the slot
// must not outlive the passkey. With the remover's vault unlocked, both
// go; with it locked, Remove is ErrVaultLocked and both stay.
func TestRaceRemoveSlotCheckVsSetUp(t *testing.T) {
	for _, unlocked := range []bool{true, false} {
		name := "remover unlocked"
		if !unlocked {
			name = "remover locked"
		}
		t.Run(name, func(t *testing.T) {
			h, _ := rcHarness(t)
			ctx := context.Background()
			if _, err := h.vault.Create(ctx, "alice", []byte(testPassphrase)); err != nil {
				t.Fatal(err)
			}
			a := newBrowser()
			stLogin(h, a, "alice", 0, false, false) // vault locked: no slot at registration
			cred, err := h.register(a, "Laptop")
			if err != nil {
				t.Fatal(err)
			}
			rm := newBrowser()
			stLogin(h, rm, "alice", rcMFA, false, unlocked) // removing needs a multi-factor session
			stUnlockSession(h, a, "alice")
			info := h.current(a)
			h.do(a, func(w http.ResponseWriter, r *http.Request) {
				if _, err := h.m.BeginUnlock(r); err != nil {
					t.Fatal(err)
				}
			})
			h.rewrite(sessionChallengeID(ceremonyUnlock, info.UserID, info.Ref), ceremonyUnlock, info.UserID, info.Ref, h.cer.Assertions[0].Challenge, nil, nil)
			response, err := json.Marshal(h.cer.Assertions[0].Response)
			if err != nil {
				t.Fatal(err)
			}
			// The set-up is held after its counter's write, before its
			// slot; Remove then reads the record (after that write), finds
			// no slot, and is held before its own write; the set-up adds
			// the slot and finishes; then Remove writes.
			ps := newPause("stored")
			type outcome struct {
				res UnlockResult
				err error
			}
			setUp := make(chan outcome, 1)
			go func() {
				var o outcome
				h.doCtx(rcWith(ctx, ps.gate), a, func(w http.ResponseWriter, r *http.Request) {
					o.res, o.err = h.m.FinishUnlock(r, response, ratelimit.Source{})
				})
				setUp <- o
			}()
			rcWaitPause(t, ps, setUp, "the unlock set-up")
			pr := newNth("put", 1)
			t.Cleanup(pr.free)
			done := make(chan error, 1)
			go func() {
				var err error
				h.doCtx(rcWith(ctx, pr.gate), rm, func(w http.ResponseWriter, r *http.Request) { err = h.m.Remove(r, "alice", cred.ID) })
				done <- err
			}()
			rcReach(t, pr.reached, done, "Remove")
			ps.free()
			if o := rcWait(t, setUp, "the unlock set-up"); o.err != nil || !o.res.SetUp {
				t.Fatalf("set-up: %+v, %v", o.res, o.err)
			}
			pr.free()
			rerr := rcWait(t, done, "Remove")
			sid, _ := vault.SecretSlotID(h.cer.Registration.Response.RawID)
			slots, err := h.vault.Slots(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			slot := false
			for _, s := range slots {
				slot = slot || s.ID == sid
			}
			list, err := h.m.List(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case unlocked && (rerr != nil || slot || len(list) != 0):
				t.Fatalf("Remove %v: slot %v, %d passkeys; want both gone", rerr, slot, len(list))
			case !unlocked && (!errors.Is(rerr, ErrVaultLocked) || !slot || len(list) != 1 || !list[0].CanUnlock):
				t.Fatalf("Remove %v: slot %v, passkeys %+v; want ErrVaultLocked and both kept", rerr, slot, list)
			}
		})
	}
}
