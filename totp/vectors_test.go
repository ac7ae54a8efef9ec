package totp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/vectors"
	"github.com/keyhold/keyhold/ratelimit"
)

// rfc6238Vector is one row of RFC 6238 Appendix B (testdata/vectors,
// copied from shared/vectors; see SOURCE.md).
type rfc6238Vector struct {
	Time      int64  `json:"time"`
	THex      string `json:"T_hex"`
	Algorithm string `json:"algorithm"`
	Digits    int    `json:"digits"`
	Period    int    `json:"period"`
	T0        int64  `json:"t0"`
	SecretHex string `json:"secret_hex"`
	SecretB32 string `json:"secret_base32"`
	TOTP      string `json:"totp"`
}

func (v rfc6238Vector) String() string { return fmt.Sprintf("%s/T=%d", v.Algorithm, v.Time) }

func (v rfc6238Vector) alg(t testing.TB) Algorithm {
	switch v.Algorithm {
	case "SHA1":
		return SHA1
	case "SHA256":
		return SHA256
	case "SHA512":
		return SHA512
	}
	t.Fatalf("vector %v: unknown algorithm", v)
	return 0
}

func (v rfc6238Vector) secret(t testing.TB) []byte {
	s, err := hex.DecodeString(v.SecretHex)
	if err != nil {
		t.Fatalf("vector %v: %v", v, err)
	}
	if got := b32.EncodeToString(s); got+"========"[:(8-len(got)%8)%8] != v.SecretB32 {
		t.Fatalf("vector %v: secret_hex and secret_base32 differ", v)
	}
	return s
}

// loadRFC6238 returns the 18 rows, failing unless all are there: every
// algorithm at every time of Appendix B, T=20000000000 included.
func loadRFC6238(t testing.TB) []rfc6238Vector {
	t.Helper()
	var f struct {
		Vectors []rfc6238Vector `json:"vectors"`
	}
	vectors.Load(t, "testdata/vectors/totp_rfc6238.json", "cf587eb96548102a812e327d073c7f908eb59efc86033af58a6fcaf95d3b45b4", &f)
	if len(f.Vectors) != 18 {
		t.Fatalf("%d RFC 6238 vectors, want 18", len(f.Vectors))
	}
	want := map[string]bool{}
	for _, tm := range []int64{59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000} {
		for _, a := range []string{"SHA1", "SHA256", "SHA512"} {
			want[fmt.Sprint(a, tm)] = true
		}
	}
	for _, v := range f.Vectors {
		if !want[fmt.Sprint(v.Algorithm, v.Time)] {
			t.Fatalf("unexpected or repeated vector %v", v)
		}
		delete(want, fmt.Sprint(v.Algorithm, v.Time))
		if v.Digits != 8 || v.Period != 30 || v.T0 != 0 || len(v.TOTP) != 8 {
			t.Fatalf("vector %v: digits %d period %d t0 %d", v, v.Digits, v.Period, v.T0)
		}
		if step, err := strconv.ParseUint(v.THex, 16, 64); err != nil || step != uint64(v.Time/30) {
			t.Fatalf("vector %v: T_hex %s is not time/30", v, v.THex)
		}
	}
	return f.Vectors
}

// TestRFC6238Vectors checks every Appendix B row through codeAt and
// matchCode at the vector's own time, with the default window (±1) and
// ExactStepOnly, as 8 digits and as 6 (the last six: the same HOTP value
// mod 10^6) (TOT-02).
func TestRFC6238Vectors(t *testing.T) {
	for _, v := range loadRFC6238(t) {
		t.Run(v.String(), func(t *testing.T) {
			secret, alg, step := v.secret(t), v.alg(t), uint64(v.Time/30)
			now := time.Unix(v.Time, 0)
			if got := string(codeAt(b32.EncodeToString(secret), byte(alg), 8, step)); got != v.TOTP {
				t.Fatalf("codeAt = %s, want %s", got, v.TOTP)
			}
			if got := refTOTP(secret, alg, 8, 30*time.Second, now); got != v.TOTP {
				t.Fatalf("the test's reference gives %s, want %s", got, v.TOTP)
			}
			for _, exact := range []bool{false, true} {
				a := &Authenticator{cfg: Config{ExactStepOnly: exact}}
				for _, c := range []struct {
					digits byte
					code   string
				}{{8, v.TOTP}, {6, v.TOTP[2:]}, {8, v.TOTP[:4] + " " + v.TOTP[4:]}, {6, " " + v.TOTP[2:5] + " " + v.TOTP[5:] + " "}} {
					m := a.matchCode(secret, byte(alg), c.digits, 30, 0, c.code, now)
					if !m.found || m.step != step || m.replayed {
						t.Fatalf("exact=%v digits=%d code %q: %+v, want found at step %d", exact, c.digits, c.code, m, step)
					}
				}
				// A code already accepted (last step = T) is a replay.
				if m := a.matchCode(secret, byte(alg), 8, 30, step, v.TOTP, now); m.found || !m.replayed {
					t.Fatalf("exact=%v with last step T: %+v, want replayed", exact, m)
				}
				if m := a.matchCode(secret, byte(alg), 8, 30, step-1, v.TOTP, now); !m.found {
					t.Fatalf("exact=%v with last step T-1: %+v, want found", exact, m)
				}
				// One wrong digit, or the 8-digit code for a 6-digit check.
				for _, bad := range []struct {
					digits byte
					code   string
				}{{8, wrongCode(v.TOTP)}, {6, v.TOTP}, {8, v.TOTP[2:]}, {8, v.TOTP + "0"}, {6, wrongCode(v.TOTP[2:])}} {
					if m := a.matchCode(secret, byte(alg), bad.digits, 30, 0, bad.code, now); m.found || m.replayed {
						t.Fatalf("exact=%v digits=%d code %q accepted: %+v", exact, bad.digits, bad.code, m)
					}
				}
			}
		})
	}
}

// TestRFC6238Window moves a fake clock around each vector's step: a code of
// step T is accepted at steps T-1, T and T+1 (at both ends of each step),
// and refused at T±2 and beyond; with ExactStepOnly only at T (TOT-03).
func TestRFC6238Window(t *testing.T) {
	for _, v := range loadRFC6238(t) {
		t.Run(v.String(), func(t *testing.T) {
			secret, alg, step := v.secret(t), v.alg(t), v.Time/30
			for d := int64(-3); d <= 3; d++ {
				for _, within := range []int64{0, 29} { // first and last second of the step
					at := (step+d)*30 + within
					if at < 0 {
						continue // before 1970: the clock reads 0, step 0
					}
					for _, exact := range []bool{false, true} {
						a := &Authenticator{cfg: Config{ExactStepOnly: exact}}
						m := a.matchCode(secret, byte(alg), 8, 30, 0, v.TOTP, time.Unix(at, 0))
						want := d == 0 || (!exact && (d == -1 || d == 1))
						if m.found != want || (m.found && m.step != uint64(step)) {
							t.Errorf("clock at step T%+d (+%ds), exact=%v: %+v, want found=%v", d, within, exact, m, want)
						}
					}
				}
			}
		})
	}
}

// TestVectorsThroughVerify stores each vector's secret as an
// authenticator (sealed by the KeyRing, as Confirm stores it) and checks
// the code through Verify at the vector's time, once, with the step before
// accepted and the one before that refused (TOT-02, TOT-03, TOT-04).
func TestVectorsThroughVerify(t *testing.T) {
	for _, v := range loadRFC6238(t) {
		t.Run(v.String(), func(t *testing.T) {
			secret, alg := v.secret(t), v.alg(t)
			put := func(e *proofEnv) {
				id := newID()
				sealed, err := e.ring.Seal(e.ctx, proofUser, secret, secretAD(proofUser, id))
				if err != nil {
					t.Fatal(err)
				}
				rec := &factorRecord{creds: []cred{{id: id, alg: byte(alg), digits: 8, period: 30, sealed: sealed}}}
				if err := e.store.PutFactors(e.ctx, proofUser, rec.encode(), 0); err != nil {
					t.Fatal(err)
				}
			}
			if time.Unix(v.Time, 0).Year() >= 2200 {
				// ratelimit.Lockout takes times up to 2200 only (the
				// storage bound): T=20000000000 is year 2603, checked by
				// TestRFC6238Vectors and TestRFC6238Window instead.
				return
			}
			for _, exact := range []bool{false, true} {
				e := newProofEnv(t, func(c *Config) { c.ExactStepOnly = exact })
				put(e)
				e.clock.Set(time.Unix(v.Time, 0))
				if err := e.auth.Verify(e.ctx, proofUser, v.TOTP, ratelimit.Source{}); err != nil {
					t.Fatalf("exact=%v: Verify at the vector's time: %v", exact, err)
				}
				if err := e.auth.Verify(e.ctx, proofUser, v.TOTP, ratelimit.Source{}); !errors.Is(err, ErrReplayed) {
					t.Fatalf("exact=%v: the vector's code twice: %v; want ErrReplayed", exact, err)
				}
			}
			if v.Time < 90 {
				return // no step T-2 after 1970
			}
			for _, c := range []struct {
				late  time.Duration
				exact bool
				ok    bool
			}{{30 * time.Second, false, true}, {60 * time.Second, false, false}, {30 * time.Second, true, false}} {
				e := newProofEnv(t, func(cfg *Config) { cfg.ExactStepOnly = c.exact })
				put(e)
				e.clock.Set(time.Unix(v.Time, 0).Add(c.late))
				err := e.auth.Verify(e.ctx, proofUser, v.TOTP, ratelimit.Source{})
				if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrWrongCode)) {
					t.Fatalf("code %v late, exact=%v: %v; want accepted=%v", c.late, c.exact, err, c.ok)
				}
			}
		})
	}
}

// TestWindowThroughVerify enrolls with a fake clock and checks, through
// Verify, that at step T the code of T-2 is refused and those of T-1 and
// T+1 accepted, and with ExactStepOnly only T's (TOT-03).
func TestWindowThroughVerify(t *testing.T) {
	for _, c := range []struct {
		exact bool
		delta int64 // the code's step minus the clock's
		ok    bool
	}{
		{false, -2, false}, {false, -1, true}, {false, 0, true}, {false, 1, true}, {false, 2, false},
		{true, -1, false}, {true, 0, true}, {true, 1, false},
	} {
		t.Run(fmt.Sprintf("exact=%v/T%+d", c.exact, c.delta), func(t *testing.T) {
			e := newProofEnv(t, func(cfg *Config) { cfg.ExactStepOnly = c.exact })
			en, _ := e.enroll(proofUser)
			secret := decodeSecret(t, en.Secret())
			e.clock.Advance(10 * DefaultPeriod) // well past the confirming step
			code := refTOTP(secret, SHA1, 6, DefaultPeriod, e.clock.Now().Add(time.Duration(c.delta)*DefaultPeriod))
			err := e.auth.Verify(e.ctx, proofUser, code, ratelimit.Source{})
			if c.ok != (err == nil) || (!c.ok && !(errors.Is(err, ErrWrongCode) && errors.Is(err, ratelimit.ErrRejected))) {
				t.Fatalf("Verify: %v; want accepted=%v", err, c.ok)
			}
		})
	}
}
