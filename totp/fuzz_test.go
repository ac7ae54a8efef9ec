package totp

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/recoverycode"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
)

// strictDigits is the TOT-06 rule, written apart from parseCode: the
// input, within MaxCodeInputLen bytes, is exactly n ASCII digits once the
// ASCII spaces are removed.
func strictDigits(s string, n int) (string, bool) {
	if len(s) > MaxCodeInputLen {
		return "", false
	}
	d := strings.ReplaceAll(s, " ", "")
	if len(d) != n {
		return "", false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "", false
		}
	}
	return d, true
}

// FuzzVerifyCode sends arbitrary code text through parseCode and
// matchCode: no panic; parseCode accepts exactly the strings strictDigits
// accepts; matchCode finds a code only if it is the window's code for one
// step, and finds every such code (the seeds hold the right codes, spaced
// and not, and look-alikes such as full-width digits).
func FuzzVerifyCode(f *testing.F) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111109, 0) // RFC 6238: SHA1 07081804
	f.Add("07081804", uint8(8), int64(0))
	f.Add("081804", uint8(6), int64(0))
	f.Add("0708 1804", uint8(8), int64(0))
	f.Add(" 081 804 ", uint8(6), int64(0))
	f.Add("０８１８０４", uint8(6), int64(0)) // full-width digits (TOT-06)
	f.Add("08180６", uint8(6), int64(0))
	f.Add("081804\x00", uint8(6), int64(0))
	f.Add("\t081804", uint8(6), int64(0))
	f.Add("08-1804", uint8(6), int64(0))
	f.Add("+81804", uint8(6), int64(0))
	f.Add("081804", uint8(6), int64(30))
	f.Add("081804", uint8(6), int64(-60))
	f.Add("0708180400", uint8(8), int64(0))
	f.Add(strings.Repeat(" ", 26)+"081804", uint8(6), int64(0))
	f.Add(strings.Repeat(" ", 27)+"081804", uint8(6), int64(0))
	f.Add("", uint8(6), int64(0))
	f.Fuzz(func(t *testing.T, code string, digitsIn uint8, shift int64) {
		digits := 6
		if digitsIn&1 == 1 {
			digits = 8
		}
		at := now.Add(time.Duration(shift%1_000_000) * time.Second)
		got, ok := parseCode(code, digits)
		want, wantOK := strictDigits(code, digits)
		if ok != wantOK || (ok && string(got) != want) {
			t.Fatalf("parseCode(%q, %d) = %q, %v; want %q, %v", code, digits, got, ok, want, wantOK)
		}
		for _, exact := range []bool{false, true} {
			a := &Authenticator{cfg: Config{ExactStepOnly: exact}}
			m := a.matchCode(secret, algSHA1, byte(digits), 30, 0, code, at)
			cur := uint64(at.Unix()) / 30
			var steps []uint64
			if wantOK {
				lo, hi := cur-1, cur+1
				if exact {
					lo, hi = cur, cur
				}
				for s := lo; s <= hi; s++ {
					if refHOTP(secret, SHA1, digits, s) == want {
						steps = append(steps, s)
					}
				}
			}
			if m.found != (len(steps) > 0) || (m.found && m.step != steps[0]) || m.replayed {
				t.Fatalf("matchCode(%q, %d digits, exact=%v) = %+v; the window's matching steps are %v", code, digits, exact, m, steps)
			}
		}
	})
}

// FuzzRecoveryCodeInput sends arbitrary input to UseRecoveryCode, on a
// fresh copy of an enrolled user's record each time: no panic, and the
// input is accepted exactly when it normalises (recoverycode.Parse) to
// one of the user's codes. In the input, '@' stands for code number
// pick%16 (when below 10), so the fuzzer mangles real codes too.
func FuzzRecoveryCodeInput(f *testing.F) {
	e := newProofEnv(f, nil)
	_, c := e.enroll(proofUser)
	template := e.stored(proofUser)
	var secrets [][]byte
	for _, rc := range c.RecoveryCodes {
		s, _ := recoverycode.Parse(rc.Reveal())
		secrets = append(secrets, s)
	}
	quiet := slog.New(slog.DiscardHandler)
	for _, s := range []string{"@", " @ ", "x@", "@-", "@@", "", "0000-0000", strings.Repeat("0", 32), strings.Repeat("Z", 32), "\xff@"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(9))
	}
	f.Add("@", uint8(15))
	f.Fuzz(func(t *testing.T, input string, pick uint8) {
		if i := int(pick % 16); i < len(c.RecoveryCodes) {
			code := c.RecoveryCodes[i].Reveal()
			if pick&0x10 != 0 {
				code = strings.ToLower(strings.ReplaceAll(code, "-", " "))
			}
			input = strings.ReplaceAll(input, "@", code)
		}
		mem := memstore.New()
		ctx := context.Background()
		if err := mem.PutFactors(ctx, proofUser, template, 0); err != nil {
			t.Fatal(err)
		}
		lockout, err := ratelimit.NewLockout(mem, ratelimit.LockoutOptions{Name: "totp", Now: e.clock.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		cfg := e.auth.cfg
		cfg.Store, cfg.Lockout = mem, lockout
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		parsed, wellFormed := recoverycode.Parse(input)
		isReal := false
		for _, s := range secrets {
			isReal = isReal || (wellFormed && bytes.Equal(parsed, s))
		}
		st, err := a.UseRecoveryCode(ctx, proofUser, input, ratelimit.Source{})
		switch {
		case isReal && err != nil:
			t.Fatalf("a real code (input %q) refused: %v", input, err)
		case !isReal && err == nil:
			t.Fatalf("input %q accepted, but it is none of the codes", input)
		case !isReal && !(errors.Is(err, ratelimit.ErrRejected) && errors.Is(err, ErrWrongCode)) && !errors.Is(err, ErrInvalidInput):
			t.Fatalf("input %q: %v; want ErrRejected/ErrWrongCode", input, err)
		case isReal && st.Remaining != len(secrets)-1:
			t.Fatalf("after one use: %+v", st)
		}
	})
}

// FuzzDecodeRecord: decodeRecord never panics on arbitrary bytes, and what
// it accepts encodes back to the same bytes (and decodes to the same
// record again).
func FuzzDecodeRecord(f *testing.F) {
	e := newProofEnv(f, nil)
	e.enroll(proofUser)
	e.enroll(proofUser)
	f.Add(e.stored(proofUser))
	f.Add((&factorRecord{}).encode())
	f.Add([]byte{})
	f.Add([]byte{recordFormat})
	f.Add([]byte{recordFormat, 9})
	f.Add([]byte{recordFormat, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedRecord) || rec != nil {
				t.Fatalf("decodeRecord = %v, %v; want nil, ErrMalformedRecord", rec, err)
			}
			return
		}
		if len(rec.creds) > MaxAuthenticators || len(rec.hashes) > int(rec.total) || rec.total > MaxRecoveryCodes {
			t.Fatalf("decoded record out of bounds: %d creds, %d of %d hashes", len(rec.creds), len(rec.hashes), rec.total)
		}
		out := rec.encode()
		if !bytes.Equal(out, b) {
			t.Fatalf("encode(decode(b)) differs:\n%x\n%x", b, out)
		}
		again, err := decodeRecord(out)
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Fatalf("decode(encode(rec)) = %+v, %v; want %+v", again, err, rec)
		}
	})
}

// FuzzSetupToken sends arbitrary tokens to Pending and Confirm: no panic,
// and an error that is ErrSetupInvalid, ErrInvalidInput or ErrSetupExpired,
// unless the token is one that really opens (the seed, or a re-encoding of
// it) for this user. The key and clock are fixed, so a seed saved in the
// corpus stays a valid token.
func FuzzSetupToken(f *testing.F) {
	e := newProofEnv(f, nil)
	en, err := e.auth.Begin(e.ctx, proofUser, "alice@example.com")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(en.Token)
	f.Add(en.Token[:len(en.Token)-1])
	f.Add(en.Token + "A")
	f.Add("")
	f.Add("!!!!")
	f.Add(strings.Repeat("A", MaxSetupTokenLen+1))
	other, _ := e.auth.Begin(e.ctx, "user-b", "bob@example.com")
	f.Add(other.Token)
	e.clock.Advance(-2 * DefaultSetupLifetime)
	expired, _ := e.auth.Begin(e.ctx, proofUser, "alice@example.com")
	e.clock.Set(proofStart)
	f.Add(expired.Token)
	f.Fuzz(func(t *testing.T, token string) {
		opens := false
		if sealed, err := base64.RawURLEncoding.DecodeString(token); err == nil && len(token) <= MaxSetupTokenLen {
			pt, err := e.ring.Open(e.ctx, proofUser, sealed, setupAD(proofUser))
			if err == nil {
				s, ok := decodeSetup(pt)
				opens = ok && proofStart.UnixMilli() < s.expires
			}
		}
		allowed := func(err error) bool {
			return errors.Is(err, ErrSetupInvalid) || errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrSetupExpired)
		}
		p, err := e.auth.Pending(e.ctx, proofUser, token)
		switch {
		case opens && (err != nil || p == nil || p.Secret() == ""):
			t.Fatalf("Pending of a valid token: %v", err)
		case !opens && (err == nil || !allowed(err)):
			t.Fatalf("Pending(%q): %v", token, err)
		}
		_, err = e.auth.Confirm(e.ctx, proofUser, token, "x", ratelimit.Source{}, ConfirmOptions{})
		switch {
		case opens && !errors.Is(err, ratelimit.ErrRejected):
			t.Fatalf("Confirm of a valid token with a malformed code: %v", err)
		case !opens && (err == nil || !allowed(err)):
			t.Fatalf("Confirm(%q): %v", token, err)
		}
		if _, err := e.mem.GetFactors(e.ctx, proofUser); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a setup token stored a record: %v", err)
		}
	})
}

// TestCodeInputStrict checks TOT-06 through Verify: the right code is
// accepted with spaces around and inside it, and refused written with
// full-width ('６'), Arabic-Indic or superscript digits, or with tabs,
// dashes, signs or NUL; each refusal is a wrong code through the lockout.
func TestCodeInputStrict(t *testing.T) {
	e := newProofEnv(t, func(c *Config) {
		c.Lockout, _ = ratelimit.NewLockout(memstore.New(), ratelimit.LockoutOptions{Name: "totp",
			Policy: ratelimit.LockoutPolicy{MaxFailures: storage.MaxLockoutFailures, AccountMaxFailures: storage.MaxLockoutFailures},
			Logger: slog.New(slog.DiscardHandler)})
	})
	en, _ := e.enroll(proofUser)
	e.clock.Advance(DefaultPeriod)
	code := e.phone(en, SHA1, 6)
	fullWidth, arabic := "", ""
	for _, r := range code {
		fullWidth += string(r - '0' + '０')
		arabic += string(r - '0' + '٠')
	}
	for _, bad := range []string{
		fullWidth, code[:5] + string(rune(code[5])-'0'+'０'), arabic, "\t" + code, code + "\n", code[:3] + "-" + code[3:],
		"+" + code, code + "\x00", "\u00a0" + code, code[:3] + "\u2009" + code[3:], code + "0", code[1:], strings.Repeat(" ", MaxCodeInputLen-5) + code,
	} {
		if err := e.auth.Verify(e.ctx, proofUser, bad, ratelimit.Source{}); !errors.Is(err, ErrWrongCode) || !errors.Is(err, ratelimit.ErrRejected) {
			t.Fatalf("code written %q: %v; want ErrRejected and ErrWrongCode", bad, err)
		}
	}
	if err := e.auth.Verify(e.ctx, proofUser, strings.Repeat(" ", MaxCodeInputLen-9)+code[:3]+" "+code[3:]+"  ", ratelimit.Source{}); err != nil {
		t.Fatalf("the right code with spaces, %d bytes: %v", MaxCodeInputLen, err)
	}
}
