package kdf

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// policyMust builds a Policy or fails the test.
func policyMust(t testing.TB, cfg PolicyConfig) *Policy {
	t.Helper()
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

// policyReasons returns the reasons of a Check result (nil for nil) and
// fails the test if err is neither nil nor a *PolicyError.
func policyReasons(t testing.TB, err error) []Reason {
	t.Helper()
	if err == nil {
		return nil
	}
	pe, ok := errors.AsType[*PolicyError](err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *PolicyError", err, err)
	}
	return pe.Reasons()
}

// policyFakeChecker is a BreachChecker that records what it receives.
type policyFakeChecker struct {
	mu       sync.Mutex
	got      [][]byte // copies of every password received
	breached bool
	err      error
}

var _ BreachChecker = (*policyFakeChecker)(nil)

func (c *policyFakeChecker) Breached(ctx context.Context, password []byte) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, bytes.Clone(password))
	return c.breached, c.err
}

var policyUser = PolicyContext{
	Username:    "marguerite",
	Email:       "m.durand+shop@example.com",
	ServiceName: "Keyhold Cloud",
	Words:       []string{"Zephyrine"},
}

// KDF-12: 15 code points single-factor, 8 with MFA, counted in code points
// of the NFKC form; a generous maximum.
func TestPolicyKDF12Length(t *testing.T) {
	emoji15 := "🦊🐙🌵🚲🎻🧊🍄🦉🪐🧲🎈🦀🌋🧵🪁"
	if n := utf8.RuneCountInString(emoji15); n != 15 {
		t.Fatalf("emoji fixture has %d code points", n)
	}
	for _, tc := range []struct {
		name   string
		cfg    PolicyConfig
		pw     string
		reason []Reason
	}{
		{"single-factor 14 code points rejected", SingleFactorPolicy(), "tqwz vbkr mplx", []Reason{ReasonTooShort}},
		{"single-factor 15 code points accepted", SingleFactorPolicy(), "tqwz vbkr mplxh", nil},
		{"single-factor 15 emoji accepted", SingleFactorPolicy(), emoji15, nil},
		{"single-factor 14 emoji rejected", SingleFactorPolicy(), strings.TrimSuffix(emoji15, "🪁"), []Reason{ReasonTooShort}},
		{"zero config is single-factor", PolicyConfig{}, "tqwz vbkr mplx", []Reason{ReasonTooShort}},
		{"MFA 8 code points accepted", MFAPolicy(), "tq7z#vbk", nil},
		{"MFA 7 code points rejected", MFAPolicy(), "tq7z#vb", []Reason{ReasonTooShort}},
		// "e" + U+0301 is two code points but one after NFKC.
		{"decomposed accents counted after NFKC", SingleFactorPolicy(), "tqwz vbkr mple\u0301", []Reason{ReasonTooShort}},
		{"NUL and spaces accepted", SingleFactorPolicy(), "tqwz\x00vbkr mplx ", nil},
		{"64 code points accepted", SingleFactorPolicy(), strings.Repeat("tqwz vbkr mplx j", 4), nil},
		{"256 code points accepted", SingleFactorPolicy(), strings.Repeat("tqwz vbkr mplx j", 16), nil},
		{"257 code points rejected", SingleFactorPolicy(), strings.Repeat("tqwz vbkr mplx j", 16) + "x", []Reason{ReasonTooLong}},
		{"legacy length 10 accepted", LegacyLengthPolicy(), "tqwz#vbk9m", nil},
		{"legacy length 9 rejected", LegacyLengthPolicy(), "tqwz#vbk9", []Reason{ReasonTooShort}},
		{"legacy length 128 accepted", LegacyLengthPolicy(), strings.Repeat("tqwz vbkr mplx j", 8), nil},
		{"legacy length 129 rejected", LegacyLengthPolicy(), strings.Repeat("tqwz vbkr mplx j", 8) + "x", []Reason{ReasonTooLong}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policyMust(t, tc.cfg)
			err := p.Check(t.Context(), []byte(tc.pw), policyUser)
			if got := policyReasons(t, err); !slices.Equal(got, tc.reason) {
				t.Fatalf("reasons = %v, want %v (err %v)", got, tc.reason, err)
			}
		})
	}
}

// KDF-12, KDF-15: the numbers a UI needs are in the violation.
func TestPolicyLengthNumbers(t *testing.T) {
	p := policyMust(t, SingleFactorPolicy())
	err := p.Check(t.Context(), []byte("tqwz vbkr mplx"), PolicyContext{})
	v, ok := errors.AsType[Violation](err)
	if !ok || v.Reason != ReasonTooShort || v.Length != 14 || v.Min != 15 {
		t.Fatalf("violation = %+v, %v", v, ok)
	}
	err = p.Check(t.Context(), bytes.Repeat([]byte("ü"), 300), PolicyContext{})
	v, ok = errors.AsType[Violation](err)
	if !ok || v.Reason != ReasonTooLong || v.Length != 300 || v.Max != 256 {
		t.Fatalf("violation = %+v, %v", v, ok)
	}
}

// KDF-13: no composition rules under the NIST presets.
func TestPolicyKDF13NoComposition(t *testing.T) {
	for _, cfg := range []PolicyConfig{SingleFactorPolicy(), MFAPolicy(), LegacyLengthPolicy()} {
		p := policyMust(t, cfg)
		for _, pw := range []string{
			"correct horse battery staple",
			"alllowercaseletterswithoutanything",
			"ALLUPPERCASELETTERSONLYHERE",
			"839201746592017364",
			"пароль из русских слов",
			"mot de passe très français",
		} {
			err := p.Check(t.Context(), []byte(pw), policyUser)
			if err != nil {
				t.Errorf("MinLength %d: %q rejected: %v", cfg.MinLength, pw, err)
			}
			if errors.Is(err, ErrMissingCharClass) {
				t.Errorf("composition error under a NIST preset")
			}
		}
	}
}

// The legacy composition preset reproduces the 12-character, four-class rule.
func TestPolicyLegacyComposition(t *testing.T) {
	p := policyMust(t, LegacyCompositionPolicy())
	err := p.Check(t.Context(), []byte("correct horse battery staple"), PolicyContext{})
	if !errors.Is(err, ErrMissingCharClass) {
		t.Fatalf("err = %v, want ErrMissingCharClass", err)
	}
	v, _ := errors.AsType[Violation](err)
	if v.Missing != ClassUpper|ClassDigit {
		t.Fatalf("missing = %v, want upper,digit", v.Missing)
	}
	if got := v.Missing.String(); got != "upper,digit" {
		t.Fatalf("String() = %q", got)
	}
	for _, pw := range []string{"Correct horse 9", "Tq7z#vbkR2mx", "Ärger über 5€!"} {
		if err := p.Check(t.Context(), []byte(pw), PolicyContext{}); err != nil {
			t.Errorf("%q rejected: %v", pw, err)
		}
	}
	if got := policyReasons(t, p.Check(t.Context(), []byte("Tq7z#vbkR2m"), PolicyContext{})); !slices.Equal(got, []Reason{ReasonTooShort}) {
		t.Errorf("11 code points: %v", got)
	}
	if got := AllCharClasses.String(); got != "lower,upper,digit,symbol" {
		t.Errorf("AllCharClasses = %q", got)
	}
	if got := CharClass(0).String(); got != "none" {
		t.Errorf("CharClass(0) = %q", got)
	}
}

// KDF-14 (a): the blocklist, matched case-insensitively on the NFKC form,
// with repetitions and trivial padding.
func TestPolicyKDF14Blocklist(t *testing.T) {
	p := policyMust(t, PolicyConfig{MinLength: 8, Blocklist: []string{"Kohlrabi-Tango"}})
	for _, tc := range []struct {
		pw      string
		blocked bool
	}{
		{"password", true},
		{"PassWord", true},
		{"passwordpassword", true},
		{"PASSWORDPASSWORD", true},
		{"ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ", true}, // full-width, NFKC
		{"trustno1trustno1", true},
		{"qwertyqwertyqwerty", true},
		{"password1234567", true},
		{"2024password!!", true},
		{"!!!password!!!!", true},
		{" password ", true},
		{"iloveyou2024!!!!", true},
		{"123456!!!!!!!!!", true},
		{"!!!!1234567890!!", true},
		{"1qaz2wsx!!!!!!!!", true},
		{"jordan23jordan23", true},
		{"jordanjordan1234", true}, // repeated core
		{"aaaaaaaaaaaaaaaa", true},
		{"😀😀😀😀😀😀😀😀", true},
		{"kohlrabi-tango", true}, // custom list
		{"KOHLRABI-TANGO2024", true},
		{"correct horse battery staple", false},
		{"mypasswordisgood", false}, // entries inside other letters are not matched
		{"p4ssw0rdp4ssw0rd", true},  // "p4ssw0rd" itself is an entry
		{"dr4g0ndr4g0n", false},     // leetspeak is not matched
		{"password is what I forgot", false},
		{"tqwz vbkr mplx", false},
		{"abababababababab", false}, // "ab", "abab", "abababab" are not entries
		{"1234512345123451", false}, // not an exact repetition
		{"horsehorse battery", false},
	} {
		err := p.Check(t.Context(), []byte(tc.pw), PolicyContext{})
		if got := errors.Is(err, ErrBlocklisted); got != tc.blocked {
			t.Errorf("%q: blocklisted = %v, want %v (err %v)", tc.pw, got, tc.blocked, err)
		}
	}
}

// KDF-14 (c): context words with padding are rejected.
func TestPolicyKDF14ContextWords(t *testing.T) {
	p := policyMust(t, SingleFactorPolicy())
	for _, tc := range []struct {
		name  string
		pw    string
		pc    PolicyContext
		field []ContextField
	}{
		{"username plus padding", "marguerite2024!!", policyUser, []ContextField{FieldUsername}},
		{"username any case, inside", "MyNameIsMARGUERITE", policyUser, []ContextField{FieldUsername}},
		{"email local part token", "my favourite shop online", policyUser, []ContextField{FieldEmail}},
		{"3-letter token inside is allowed", "durand loves doe", PolicyContext{Email: "doe@example.com"}, nil},
		{"3-letter token as core", "doe123456789012345", PolicyContext{Email: "doe@example.com"}, []ContextField{FieldEmail}},
		{"service name", "keyhold rules forever", policyUser, []ContextField{FieldService}},
		{"service name token", "my cloud is very safe", policyUser, []ContextField{FieldService}},
		{"extra word", "zephyrine and bananas", policyUser, []ContextField{FieldWord}},
		{"username and email", "jdurand-jdurand-99", PolicyContext{Username: "jdurand", Email: "jdurand@example.com"}, []ContextField{FieldUsername, FieldEmail}},
		{"email without @ is the local part", "user zorglub 2024 x", PolicyContext{Email: "zorglub"}, []ContextField{FieldEmail}},
		{"short username ignored", "al al al al al al al", PolicyContext{Username: "al"}, nil},
		{"no context", "marguerite2024!!", PolicyContext{}, nil},
		{"NFKC context word", "ｍａｒｇｕｅｒｉｔｅ2024!!", policyUser, []ContextField{FieldUsername}},
		{"invalid UTF-8 context word ignored", "tqwz vbkr mplxh", PolicyContext{Username: "\xff\xfe"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(t.Context(), []byte(tc.pw), tc.pc)
			var got []ContextField
			if pe, ok := errors.AsType[*PolicyError](err); ok {
				for _, v := range pe.Violations {
					if v.Reason == ReasonContextWord {
						got = append(got, v.Field)
					} else {
						t.Errorf("unexpected violation %v", v)
					}
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.field) {
				t.Fatalf("fields = %v, want %v", got, tc.field)
			}
			if (len(got) > 0) != errors.Is(err, ErrContextWord) {
				t.Fatalf("errors.Is(ErrContextWord) disagrees: %v", err)
			}
		})
	}
}

// KDF-14 (b): the breach checker receives the whole NFKC password, a copy
// that is cleared afterwards, and the caller's buffer is left alone.
func TestPolicyKDF14BreachHook(t *testing.T) {
	var seen []byte
	c := &policyFakeChecker{}
	rec := breachCheckerFunc(func(ctx context.Context, pw []byte) (bool, error) {
		seen = pw
		return c.Breached(ctx, pw)
	})
	p := policyMust(t, PolicyConfig{BreachChecker: rec})
	in := []byte("cafe\u0301 au lait, sans sucre")
	orig := bytes.Clone(in)
	if err := p.Check(t.Context(), in, policyUser); err != nil {
		t.Fatal(err)
	}
	if want := "café au lait, sans sucre"; len(c.got) != 1 || string(c.got[0]) != want {
		t.Fatalf("checker got %q, want the whole NFKC form %q", c.got, want)
	}
	if !bytes.Equal(in, orig) {
		t.Fatal("Check modified the caller's password")
	}
	if !bytes.Equal(seen, make([]byte, len(seen))) {
		t.Fatal("the copy passed to the checker was not cleared")
	}

	c.breached = true
	err := p.Check(t.Context(), []byte("tqwz vbkr mplxh"), policyUser)
	if got := policyReasons(t, err); !slices.Equal(got, []Reason{ReasonBreached}) || !errors.Is(err, ErrBreached) {
		t.Fatalf("breached: %v", err)
	}
}

type breachCheckerFunc func(context.Context, []byte) (bool, error)

func (f breachCheckerFunc) Breached(ctx context.Context, pw []byte) (bool, error) { return f(ctx, pw) }

// When the checker fails, the failure is reported with, not instead of,
// the other violations, and the cause stays reachable.
func TestPolicyBreachCheckFailed(t *testing.T) {
	c := &policyFakeChecker{err: context.DeadlineExceeded}
	p := policyMust(t, PolicyConfig{BreachChecker: c})
	err := p.Check(t.Context(), []byte("password"), PolicyContext{})
	want := []Reason{ReasonTooShort, ReasonBlocklisted, ReasonBreachCheckFailed}
	if got := policyReasons(t, err); !slices.Equal(got, want) {
		t.Fatalf("reasons = %v, want %v", got, want)
	}
	for _, target := range []error{ErrBreachCheckFailed, context.DeadlineExceeded, ErrTooShort, ErrBlocklisted} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(err, %v) = false", target)
		}
	}
	if errors.Is(err, ErrBreached) {
		t.Error("a failed check must not claim the password is breached")
	}
	// A failing custom checker's message is not copied into ours.
	c.err = errors.New("oops: the password was tqwz vbkr mplxh")
	err = p.Check(t.Context(), []byte("tqwz vbkr mplxh"), PolicyContext{})
	if strings.Contains(err.Error(), "tqwz") {
		t.Fatalf("message leaks the checker's error: %v", err)
	}
}

// KDF-15: every reason matches its sentinel with errors.Is, and only its own.
func TestPolicyKDF15Reasons(t *testing.T) {
	sentinels := map[Reason]error{
		ReasonInvalidUTF8:       ErrInvalidUTF8,
		ReasonTooShort:          ErrTooShort,
		ReasonTooLong:           ErrTooLong,
		ReasonMissingCharClass:  ErrMissingCharClass,
		ReasonBlocklisted:       ErrBlocklisted,
		ReasonContextWord:       ErrContextWord,
		ReasonBreached:          ErrBreached,
		ReasonBreachCheckFailed: ErrBreachCheckFailed,
	}
	strict := policyMust(t, LegacyCompositionPolicy())
	breached := policyMust(t, PolicyConfig{BreachChecker: &policyFakeChecker{breached: true}})
	failing := policyMust(t, PolicyConfig{BreachChecker: &policyFakeChecker{err: errors.New("network down")}})
	for _, tc := range []struct {
		reason Reason
		p      *Policy
		pw     string
	}{
		{ReasonInvalidUTF8, strict, "Tq7z#vbkR2mx\xff"},
		{ReasonTooShort, strict, "Tq7z#vbkR2m"},
		{ReasonTooLong, strict, strings.Repeat("Tq7z#vbkR2mx", 30)},
		{ReasonMissingCharClass, strict, "tq7z#vbkr2mx"},
		{ReasonBlocklisted, strict, "Password1234!"},
		{ReasonContextWord, strict, "Marguerite#2024"},
		{ReasonBreached, breached, "tqwz vbkr mplxh"},
		{ReasonBreachCheckFailed, failing, "tqwz vbkr mplxh"},
	} {
		t.Run(string(tc.reason), func(t *testing.T) {
			err := tc.p.Check(t.Context(), []byte(tc.pw), policyUser)
			if got := policyReasons(t, err); !slices.Equal(got, []Reason{tc.reason}) {
				t.Fatalf("reasons = %v, want [%v] (err %v)", got, tc.reason, err)
			}
			for r, s := range sentinels {
				if got := errors.Is(err, s); got != (r == tc.reason) {
					t.Errorf("errors.Is(err, %v) = %v", s, got)
				}
			}
			if _, ok := errors.AsType[Violation](err); !ok {
				t.Error("errors.As(Violation) failed")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "kdf: ") || strings.ReplaceAll(msg, "UTF-8", "utf-8") != strings.ToLower(msg) {
				t.Errorf("message %q is not lowercase with prefix kdf: ", msg)
			}
		})
	}
}

// KDF-15: every violation is reported at once, in a fixed order.
func TestPolicyMultipleViolations(t *testing.T) {
	c := &policyFakeChecker{breached: true}
	cfg := LegacyCompositionPolicy()
	cfg.BreachChecker = c
	p := policyMust(t, cfg)
	err := p.Check(t.Context(), []byte("jordan23"), PolicyContext{Username: "Jordan", Email: "jordan@example.com"})
	pe, ok := errors.AsType[*PolicyError](err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	want := []Violation{
		{Reason: ReasonTooShort, Length: 8, Min: 12},
		{Reason: ReasonMissingCharClass, Missing: ClassUpper | ClassSymbol},
		{Reason: ReasonBlocklisted},
		{Reason: ReasonContextWord, Field: FieldUsername},
		{Reason: ReasonContextWord, Field: FieldEmail},
		{Reason: ReasonBreached},
	}
	if !slices.Equal(pe.Violations, want) {
		t.Fatalf("violations =\n%+v\nwant\n%+v", pe.Violations, want)
	}
	for _, s := range []error{ErrTooShort, ErrMissingCharClass, ErrBlocklisted, ErrContextWord, ErrBreached} {
		if !errors.Is(err, s) {
			t.Errorf("errors.Is(err, %v) = false", s)
		}
	}
	if !pe.Has(ReasonBreached) || pe.Has(ReasonTooLong) {
		t.Error("Has")
	}
	const wantMsg = "kdf: password rejected by policy: password too short: 8 code points, minimum 12; " +
		"password lacks a required character class: missing upper,symbol; password is too common; " +
		"password contains a context-specific word: username; password contains a context-specific word: email; " +
		"password appears in a data breach"
	if got := err.Error(); got != wantMsg {
		t.Fatalf("message\n%s\nwant\n%s", got, wantMsg)
	}
}

func TestPolicyInvalidUTF8(t *testing.T) {
	c := &policyFakeChecker{}
	p := policyMust(t, PolicyConfig{BreachChecker: c})
	for _, pw := range []string{"tqwz vbkr mplxh\xff", "\xc3\x28tqwz vbkr mplxh", "\xed\xa0\x80 surrogate half xx"} {
		err := p.Check(t.Context(), []byte(pw), policyUser)
		if !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("%q: err = %v", pw, err)
		}
		if got := policyReasons(t, err); !slices.Equal(got, []Reason{ReasonInvalidUTF8}) {
			t.Fatalf("reasons = %v", got)
		}
	}
	if len(c.got) != 0 {
		t.Fatal("checker called for invalid UTF-8")
	}
}

// Input over the hard cap is rejected without normalising or inspecting it.
func TestPolicyHardCap(t *testing.T) {
	c := &policyFakeChecker{}
	p := policyMust(t, PolicyConfig{BreachChecker: c})
	big := bytes.Repeat([]byte{'a'}, policyHardCapBytes+1)
	err := p.Check(t.Context(), big, PolicyContext{})
	if got := policyReasons(t, err); !slices.Equal(got, []Reason{ReasonTooLong}) || !errors.Is(err, ErrTooLong) {
		t.Fatalf("err = %v", err)
	}
	if len(c.got) != 0 {
		t.Fatal("checker called for oversized input")
	}
	// The cap is far above what any allowed maximum can normalise from.
	if MaxPolicyMaxLength*16 > policyHardCapBytes {
		t.Fatal("hard cap too small for MaxPolicyMaxLength")
	}
}

// Error messages never contain the password.
func TestPolicyErrorsDoNotLeakPassword(t *testing.T) {
	c := &policyFakeChecker{breached: true}
	cfg := LegacyCompositionPolicy()
	cfg.BreachChecker = c
	p := policyMust(t, cfg)
	for _, pw := range []string{"zq", "zqxjzqxj", "marguerite77", "trustno1trustno1", strings.Repeat("zqxj", 100), "zqxj\xff"} {
		err := p.Check(t.Context(), []byte(pw), policyUser)
		if err == nil {
			t.Fatalf("%q accepted", pw)
		}
		msg := err.Error()
		for _, part := range []string{pw, "zq", "marguerite", "trustno1"} {
			if strings.Contains(msg, part) {
				t.Errorf("message %q contains %q", msg, part)
			}
		}
	}
}

func TestNewPolicyValidation(t *testing.T) {
	for _, cfg := range []PolicyConfig{
		{MinLength: 7},
		{MinLength: -1},
		{MaxLength: 63},
		{MaxLength: 1025},
		{MinLength: 100, MaxLength: 99},
		{RequiredClasses: 1 << 5},
		{Blocklist: []string{""}},
		{Blocklist: []string{"ok", "\xff"}},
	} {
		if _, err := NewPolicy(cfg); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("NewPolicy(%+v) err = %v, want ErrInvalidPolicy", cfg, err)
		}
	}

	extra := []string{"Kohlrabi"}
	p := policyMust(t, PolicyConfig{Blocklist: extra})
	got := p.Config()
	if got.MinLength != 15 || got.MaxLength != 256 || got.RequiredClasses != 0 || got.BreachChecker != nil {
		t.Fatalf("resolved config = %+v", got)
	}
	// The policy keeps its own copy of the config.
	extra[0] = "changed"
	got.Blocklist[0] = "changed too"
	if p.Config().Blocklist[0] != "Kohlrabi" {
		t.Fatal("config not copied")
	}
	if !errors.Is(p.Check(t.Context(), []byte("kohlrabikohlrabi"), PolicyContext{}), ErrBlocklisted) {
		t.Fatal("extra blocklist lost")
	}
}

func TestPolicyPresets(t *testing.T) {
	for _, tc := range []struct {
		cfg      PolicyConfig
		min, max int
		classes  CharClass
	}{
		{SingleFactorPolicy(), 15, 256, 0},
		{MFAPolicy(), 8, 256, 0},
		{LegacyCompositionPolicy(), 12, 256, AllCharClasses},
		{LegacyLengthPolicy(), 10, 128, 0},
	} {
		c := policyMust(t, tc.cfg).Config()
		if c.MinLength != tc.min || c.MaxLength != tc.max || c.RequiredClasses != tc.classes {
			t.Errorf("preset = %+v", c)
		}
	}
	// Presets return fresh values.
	a := SingleFactorPolicy()
	a.MinLength = 99
	if SingleFactorPolicy().MinLength != 15 {
		t.Fatal("preset is shared")
	}
}

func TestPolicyZeroValueFailsClosed(t *testing.T) {
	var zero Policy
	if err := zero.Check(t.Context(), []byte("correct horse battery staple"), PolicyContext{}); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("zero Policy: %v", err)
	}
	var nilp *Policy
	if err := nilp.Check(t.Context(), []byte("correct horse battery staple"), PolicyContext{}); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("nil Policy: %v", err)
	}
}

// A Policy is safe for concurrent use (run with -race).
func TestPolicyConcurrent(t *testing.T) {
	p := policyMust(t, PolicyConfig{BreachChecker: &policyFakeChecker{}, Blocklist: []string{"kohlrabi"}})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				pw := []byte(strings.Repeat("x", i+j) + "password")
				_ = p.Check(context.Background(), pw, policyUser)
			}
		})
	}
	wg.Wait()
}

// FuzzPolicyCheck: Check never panics, returns nil or a *PolicyError whose
// violations each match their sentinel, and never echoes the password.
func FuzzPolicyCheck(f *testing.F) {
	for _, s := range []string{"", "password", "passwordpassword", "marguerite2024!!", "correct horse battery staple", "\xff", "e\u0301", "🦊🐙🌵", "\x00\x00"} {
		f.Add([]byte(s))
	}
	p := policyMust(f, LegacyCompositionPolicy())
	f.Fuzz(func(t *testing.T, pw []byte) {
		err := p.Check(context.Background(), pw, policyUser)
		if err == nil {
			return
		}
		pe, ok := errors.AsType[*PolicyError](err)
		if !ok || len(pe.Violations) == 0 {
			t.Fatalf("err = %#v", err)
		}
		for _, v := range pe.Violations {
			if !errors.Is(err, v.Reason.sentinel()) {
				t.Fatalf("%v does not match its sentinel", v.Reason)
			}
		}
		// The message is built from fixed text and numbers only.
		if len(pw) >= 4 && bytes.ContainsFunc(pw, func(r rune) bool { return r == 'q' || r == 'z' || r == 'j' || r == 'x' }) &&
			strings.Contains(err.Error(), string(pw)) {
			t.Fatalf("message %q contains the password", err)
		}
	})
}
