package kdf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
)

// Passphrase-policy sentinels. [Policy.Check] returns a [*PolicyError]
// that matches one of these (with [errors.Is]) for every rule the password
// breaks; a password longer than the policy maximum matches [ErrTooLong]
// and invalid UTF-8 matches [ErrInvalidUTF8].
var (
	// ErrTooShort means the password has fewer code points than the
	// policy minimum.
	ErrTooShort = errors.New("kdf: password too short")

	// ErrBlocklisted means the password is a commonly used password, a
	// repetition of one, or one with trivial digit/symbol padding (see
	// [Policy.Check] for exactly what is matched).
	ErrBlocklisted = errors.New("kdf: password is too common")

	// ErrContextWord means the password contains a word from the
	// [PolicyContext]: the username, the e-mail local part, the service
	// name or one of the extra words.
	ErrContextWord = errors.New("kdf: password contains a context-specific word")

	// ErrBreached means the configured [BreachChecker] reported the
	// password as known from a data breach.
	ErrBreached = errors.New("kdf: password appears in a data breach")

	// ErrMissingCharClass means the password lacks a character class that
	// the policy requires. Only policies with [PolicyConfig.RequiredClasses]
	// set (such as [LegacyCompositionPolicy]) produce it.
	ErrMissingCharClass = errors.New("kdf: password lacks a required character class")

	// ErrBreachCheckFailed means the [BreachChecker] itself failed (network,
	// timeout, cancelled context, malformed response), so whether the
	// password is breached is unknown. It is reported together with any
	// other violation; the application decides whether to fail open.
	ErrBreachCheckFailed = errors.New("kdf: breached-password check failed")

	// ErrInvalidPolicy means a [PolicyConfig] was rejected by [NewPolicy],
	// or a Policy that was not built by NewPolicy was used.
	ErrInvalidPolicy = errors.New("kdf: invalid password policy")
)

// Reason is a machine-readable rejection reason, stable across releases,
// that a UI can map to guidance for the user.
type Reason string

// Rejection reasons. Each one matches the sentinel named in its comment.
const (
	ReasonInvalidUTF8       Reason = "invalid_utf8"        // ErrInvalidUTF8
	ReasonTooShort          Reason = "too_short"           // ErrTooShort
	ReasonTooLong           Reason = "too_long"            // ErrTooLong
	ReasonMissingCharClass  Reason = "missing_char_class"  // ErrMissingCharClass
	ReasonBlocklisted       Reason = "blocklisted"         // ErrBlocklisted
	ReasonContextWord       Reason = "context_word"        // ErrContextWord
	ReasonBreached          Reason = "breached"            // ErrBreached
	ReasonBreachCheckFailed Reason = "breach_check_failed" // ErrBreachCheckFailed
)

// sentinel returns the sentinel error the reason matches.
func (r Reason) sentinel() error {
	switch r {
	case ReasonInvalidUTF8:
		return ErrInvalidUTF8
	case ReasonTooShort:
		return ErrTooShort
	case ReasonTooLong:
		return ErrTooLong
	case ReasonMissingCharClass:
		return ErrMissingCharClass
	case ReasonBlocklisted:
		return ErrBlocklisted
	case ReasonContextWord:
		return ErrContextWord
	case ReasonBreached:
		return ErrBreached
	case ReasonBreachCheckFailed:
		return ErrBreachCheckFailed
	}
	return ErrInvalidPolicy
}

// ContextField names the [PolicyContext] field whose word a password
// contains. The word itself is never reported, since it is part of the
// password.
type ContextField string

// Context fields reported in [Violation.Field].
const (
	FieldUsername ContextField = "username"
	FieldEmail    ContextField = "email"
	FieldService  ContextField = "service"
	FieldWord     ContextField = "word"
)

// CharClass is a set of character classes, used by policies that keep a
// legacy composition rule.
type CharClass uint8

// Character classes. A code point is in exactly one class or none:
// Unicode lowercase letters (Ll) are ClassLower; uppercase and titlecase
// letters (Lu, Lt) are ClassUpper; decimal digits (Nd) are ClassDigit;
// everything that is neither a letter, a mark nor a number (punctuation,
// symbols, emoji, spaces, controls) is ClassSymbol. Other letters (for
// example CJK, which have no case), marks and non-decimal numbers are in
// no class.
const (
	ClassLower CharClass = 1 << iota
	ClassUpper
	ClassDigit
	ClassSymbol

	// AllCharClasses is the four classes together, the rule of
	// [LegacyCompositionPolicy].
	AllCharClasses = ClassLower | ClassUpper | ClassDigit | ClassSymbol
)

// Has reports whether every class in o is in c.
func (c CharClass) Has(o CharClass) bool { return c&o == o }

// String returns the classes in c as a comma-separated list such as
// "lower,digit", or "none".
func (c CharClass) String() string {
	var names []string
	for _, n := range []struct {
		c    CharClass
		name string
	}{{ClassLower, "lower"}, {ClassUpper, "upper"}, {ClassDigit, "digit"}, {ClassSymbol, "symbol"}} {
		if c.Has(n.c) {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

func classOf(r rune) CharClass {
	switch {
	case unicode.IsLower(r):
		return ClassLower
	case unicode.IsUpper(r) || unicode.IsTitle(r):
		return ClassUpper
	case unicode.IsDigit(r):
		return ClassDigit
	case unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r):
		return 0
	}
	return ClassSymbol
}

// Violation is one broken rule. Only the fields that apply to its Reason
// are set; none of them contains the password or any part of it.
type Violation struct {
	// Reason says which rule was broken.
	Reason Reason

	// Length is the password's length in code points of its NFKC form,
	// for ReasonTooShort and ReasonTooLong. For input above the hard cap
	// of 64 KiB it is the number of bytes instead (the input is not
	// normalised).
	Length int

	// Min is the policy minimum in code points, for ReasonTooShort.
	Min int

	// Max is the policy maximum in code points, for ReasonTooLong.
	Max int

	// Missing is the set of required classes the password lacks, for
	// ReasonMissingCharClass.
	Missing CharClass

	// Field is the context field whose word the password contains, for
	// ReasonContextWord. There is one violation per matching field.
	Field ContextField

	cause error // ReasonBreachCheckFailed: the checker's error
}

// Error returns a lowercase message prefixed "kdf: " that names the rule
// and its numbers, never the password.
func (v Violation) Error() string {
	base := v.Reason.sentinel().Error()
	switch v.Reason {
	case ReasonTooShort:
		return fmt.Sprintf("%s: %d code points, minimum %d", base, v.Length, v.Min)
	case ReasonTooLong:
		return fmt.Sprintf("%s: %d code points, maximum %d", base, v.Length, v.Max)
	case ReasonMissingCharClass:
		return fmt.Sprintf("%s: missing %s", base, v.Missing)
	case ReasonContextWord:
		return fmt.Sprintf("%s: %s", base, v.Field)
	}
	return base
}

// Unwrap returns the sentinel the violation matches and, for
// ReasonBreachCheckFailed, the checker's error (so that, for example,
// errors.Is(err, context.DeadlineExceeded) works). The checker's error is
// not part of [Violation.Error], as a custom checker's message is not
// guaranteed to be free of secrets.
func (v Violation) Unwrap() []error {
	if v.cause != nil {
		return []error{v.Reason.sentinel(), v.cause}
	}
	return []error{v.Reason.sentinel()}
}

// PolicyError is returned by [Policy.Check] when the password breaks one
// or more rules. It lists every violation at once, in a fixed order
// (encoding, length, composition, blocklist, context words, breach).
// errors.Is(err, ErrX) is true for the sentinel of every violation.
type PolicyError struct {
	Violations []Violation // every rule broken, in that order
}

// Error joins the violations' messages. It never contains the password.
func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("kdf: password rejected by policy")
	for i, v := range e.Violations {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(strings.TrimPrefix(v.Error(), "kdf: "))
	}
	return b.String()
}

// Unwrap returns the violations, so that [errors.Is] matches each one's
// sentinel and [errors.As] can extract a [Violation].
func (e *PolicyError) Unwrap() []error {
	errs := make([]error, len(e.Violations))
	for i, v := range e.Violations {
		errs[i] = v
	}
	return errs
}

// Reasons returns the reason of every violation, in order.
func (e *PolicyError) Reasons() []Reason {
	rs := make([]Reason, len(e.Violations))
	for i, v := range e.Violations {
		rs[i] = v.Reason
	}
	return rs
}

// Has reports whether one of the violations has reason r.
func (e *PolicyError) Has(r Reason) bool {
	return slices.ContainsFunc(e.Violations, func(v Violation) bool { return v.Reason == r })
}

// Length bounds of a [PolicyConfig], in code points.
const (
	// DefaultPolicyMinLength is the minimum for a password that is the
	// only authentication factor (NIST SP 800-63B-4 §3.1.1.2), used when
	// [PolicyConfig.MinLength] is zero.
	DefaultPolicyMinLength = 15

	// MFAPolicyMinLength is the minimum for a password that is only used
	// together with a second factor, and the lowest MinLength accepted.
	MFAPolicyMinLength = 8

	// DefaultPolicyMaxLength is used when [PolicyConfig.MaxLength] is zero.
	DefaultPolicyMaxLength = 256

	// MinPolicyMaxLength is the lowest accepted MaxLength: NIST SP 800-63B
	// requires that at least 64 characters be allowed.
	MinPolicyMaxLength = 64

	// MaxPolicyMaxLength is the highest accepted MaxLength.
	MaxPolicyMaxLength = 1024
)

// policyHardCapBytes bounds the work Check does on attacker-supplied
// input: longer input is reported as too long without being normalised or
// inspected. NFKC maps at most 16 bytes of input to one code point, so no
// input over the cap can fit within MaxPolicyMaxLength.
const policyHardCapBytes = 64 << 10

// PolicyConfig configures a [Policy]. The zero value is the NIST SP
// 800-63B single-factor policy, the same as [SingleFactorPolicy].
type PolicyConfig struct {
	// MinLength is the minimum length in code points of the NFKC form.
	// Zero selects DefaultPolicyMinLength (15); values below
	// MFAPolicyMinLength (8) are rejected.
	MinLength int

	// MaxLength is the maximum length in code points of the NFKC form.
	// Zero selects DefaultPolicyMaxLength (256). It must be between
	// MinPolicyMaxLength (64) and MaxPolicyMaxLength (1024) and not below
	// MinLength; a legacy policy with a lower maximum is not supported.
	MaxLength int

	// RequiredClasses is a composition rule: every class in it must occur
	// in the password. Zero (the default) imposes none, as NIST SP
	// 800-63B requires; set it only to keep an existing policy.
	RequiredClasses CharClass

	// Blocklist holds extra entries, such as the service's own name or
	// passwords seen in attacks on it, checked exactly like the built-in
	// list (see [Policy.Check]). Entries are compared in NFKC form, case
	// folded; empty or invalid UTF-8 entries are rejected.
	Blocklist []string

	// BreachChecker, if not nil, is asked whether the password is known
	// from a breach, for example a [PwnedChecker]. Nil (the default)
	// skips the check, since it needs an external service.
	BreachChecker BreachChecker
}

// SingleFactorPolicy returns the NIST SP 800-63B policy for a password
// that is the only authentication factor: 15 to 256 code points, no
// composition rules, the built-in blocklist and context words (KDF-12,
// KDF-13). Set BreachChecker on the result to add a breach check.
func SingleFactorPolicy() PolicyConfig {
	return PolicyConfig{MinLength: DefaultPolicyMinLength, MaxLength: DefaultPolicyMaxLength}
}

// MFAPolicy returns the NIST SP 800-63B policy for a password that is only
// ever used together with a second factor: like [SingleFactorPolicy] but
// with a minimum of 8 code points. Use it only if the application enforces
// MFA for every account it applies to (KDF-12).
func MFAPolicy() PolicyConfig {
	return PolicyConfig{MinLength: MFAPolicyMinLength, MaxLength: DefaultPolicyMaxLength}
}

// LegacyCompositionPolicy returns a policy for applications that must keep
// an existing rule of at least 12 characters with a lowercase letter, an
// uppercase letter, a digit and a symbol (see [CharClass] for what each
// class contains), up to 256 code points. The blocklist and context words
// still apply. NIST SP 800-63B advises against composition rules; prefer
// [SingleFactorPolicy] for new applications.
func LegacyCompositionPolicy() PolicyConfig {
	return PolicyConfig{MinLength: 12, MaxLength: DefaultPolicyMaxLength, RequiredClasses: AllCharClasses}
}

// LegacyLengthPolicy returns a policy for applications that must keep an
// existing rule of 10 to 128 characters without composition rules. The
// blocklist and context words still apply. Prefer [SingleFactorPolicy] or
// [MFAPolicy] for new applications.
func LegacyLengthPolicy() PolicyConfig {
	return PolicyConfig{MinLength: 10, MaxLength: 128}
}

// PolicyContext carries the words specific to the account and service
// that a password must not contain (NIST SP 800-63B §3.1.1.2, ASVS
// V6.2.11). Empty fields are ignored.
type PolicyContext struct {
	// Username is the account's login name.
	Username string

	// Email is the account's e-mail address; only its local part (the
	// text before the last '@') is used.
	Email string

	// ServiceName is the name of the application or service.
	ServiceName string

	// Words are further words, such as the user's display name or the
	// name of the organisation.
	Words []string
}

// Policy checks new passwords against length rules, an optional legacy
// composition rule, a blocklist of common passwords, context words and an
// optional breach check. Build it with [NewPolicy]. It is immutable and
// safe for concurrent use. The zero Policy rejects every password with
// [ErrInvalidPolicy].
type Policy struct {
	cfg   PolicyConfig        // resolved; Blocklist is a private copy
	extra map[string]struct{} // folded NFKC forms of cfg.Blocklist
	list  *blocklist          // the built-in list
}

// NewPolicy validates cfg, fills in defaults for zero fields and returns a
// Policy that keeps its own copy of cfg. It loads the embedded blocklist
// on first use.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	if cfg.MinLength == 0 {
		cfg.MinLength = DefaultPolicyMinLength
	}
	if cfg.MaxLength == 0 {
		cfg.MaxLength = DefaultPolicyMaxLength
	}
	switch {
	case cfg.MinLength < MFAPolicyMinLength:
		return nil, fmt.Errorf("%w: MinLength %d is below %d", ErrInvalidPolicy, cfg.MinLength, MFAPolicyMinLength)
	case cfg.MaxLength < MinPolicyMaxLength || cfg.MaxLength > MaxPolicyMaxLength:
		return nil, fmt.Errorf("%w: MaxLength %d is outside [%d, %d]", ErrInvalidPolicy, cfg.MaxLength, MinPolicyMaxLength, MaxPolicyMaxLength)
	case cfg.MaxLength < cfg.MinLength:
		return nil, fmt.Errorf("%w: MaxLength %d is below MinLength %d", ErrInvalidPolicy, cfg.MaxLength, cfg.MinLength)
	case cfg.RequiredClasses&^AllCharClasses != 0:
		return nil, fmt.Errorf("%w: unknown character classes %#x", ErrInvalidPolicy, uint8(cfg.RequiredClasses&^AllCharClasses))
	}
	list, err := loadBlocklist()
	if err != nil {
		return nil, err
	}
	p := &Policy{cfg: cfg, list: list}
	p.cfg.Blocklist = slices.Clone(cfg.Blocklist)
	if len(cfg.Blocklist) > 0 {
		p.extra = make(map[string]struct{}, len(cfg.Blocklist))
		for i, w := range cfg.Blocklist {
			f, ok := foldWord(w)
			if !ok || f == "" {
				return nil, fmt.Errorf("%w: Blocklist entry %d is empty or not valid UTF-8", ErrInvalidPolicy, i)
			}
			p.extra[f] = struct{}{}
		}
	}
	return p, nil
}

// Config returns the resolved configuration (defaults filled in). The
// Blocklist slice is a copy.
func (p *Policy) Config() PolicyConfig {
	if p == nil {
		return PolicyConfig{}
	}
	c := p.cfg
	c.Blocklist = slices.Clone(c.Blocklist)
	return c
}

// Check reports whether password may be set as a new password. It returns
// nil, or a [*PolicyError] listing every rule the password breaks, each of
// which matches its sentinel with [errors.Is]. It never modifies password.
//
// The password is first mapped to NFKC; nothing is trimmed and case is
// kept, and any Unicode (spaces, emoji, NUL) is accepted. Invalid UTF-8 is
// reported alone as ReasonInvalidUTF8, and input over 64 KiB alone as
// ReasonTooLong, without further checks. Otherwise the rules are:
//
//   - Length, in code points of the NFKC form: MinLength ≤ n ≤ MaxLength
//     (ReasonTooShort, ReasonTooLong).
//   - Composition, only if RequiredClasses is set (ReasonMissingCharClass).
//   - Blocklist (ReasonBlocklisted), on the case-folded NFKC form w,
//     against the built-in list and [PolicyConfig.Blocklist]. w is rejected
//     if it, or one of its "cores" of at least 4 code points, is an entry,
//     is an entry repeated two or more times, or is one code point
//     repeated. The cores are w with the longest prefix and the longest
//     suffix of padding removed, for three kinds of padding: digits and
//     symbols mixed, symbols only, and digits only (digits are Unicode
//     numbers; symbols are code points that are neither letters, marks nor
//     numbers, including space). So "password", "PASSWORD", "passwordpassword",
//     "password1234567!", "!!password!!" and "123456!!!!!!!!!" are all
//     rejected, but "p4ssword…" (leetspeak) or an entry in the middle of
//     other letters are not.
//   - Context words (ReasonContextWord, one violation per field), compared
//     case-folded in NFKC form. Each of Username, the local part of Email,
//     ServiceName and Words is taken whole and split into runs of letters,
//     marks and digits. A word or run of 4 or more code points is rejected
//     if it occurs anywhere in the password; one of 3 code points only if
//     it is a core of the password as defined above (the word with
//     padding). Shorter words are ignored.
//   - Breach, if a BreachChecker is set: it is called with a copy of the
//     whole NFKC form, which is cleared afterwards (ReasonBreached). If
//     the checker fails, the error has a ReasonBreachCheckFailed violation
//     (matching ErrBreachCheckFailed and the checker's error) in addition
//     to the others; the application decides whether to fail open, for
//     example by accepting a password whose only violation is that one.
//
// ctx is only used for the breach check.
func (p *Policy) Check(ctx context.Context, password []byte, pc PolicyContext) error {
	if p == nil {
		return errNilPolicy
	}
	if p == nil || p.list == nil {
		return fmt.Errorf("%w: not built with NewPolicy", ErrInvalidPolicy)
	}
	if len(password) > policyHardCapBytes {
		return &PolicyError{Violations: []Violation{{Reason: ReasonTooLong, Length: len(password), Max: p.cfg.MaxLength}}}
	}
	norm, changed, err := normalizeChanged(password)
	if err != nil {
		return &PolicyError{Violations: []Violation{{Reason: ReasonInvalidUTF8}}}
	}
	if changed { // our copy, never the caller's slice
		defer clear(norm)
	}
	var vs []Violation

	n := utf8.RuneCount(norm)
	if n < p.cfg.MinLength {
		vs = append(vs, Violation{Reason: ReasonTooShort, Length: n, Min: p.cfg.MinLength})
	}
	if n > p.cfg.MaxLength {
		vs = append(vs, Violation{Reason: ReasonTooLong, Length: n, Max: p.cfg.MaxLength})
	}

	if p.cfg.RequiredClasses != 0 {
		var have CharClass
		for _, r := range string(norm) {
			have |= classOf(r)
		}
		if missing := p.cfg.RequiredClasses &^ have; missing != 0 {
			vs = append(vs, Violation{Reason: ReasonMissingCharClass, Missing: missing})
		}
	}

	folded := cases.Fold().String(string(norm))
	cores := paddingCores(folded)
	if p.blocklisted(folded, cores) {
		vs = append(vs, Violation{Reason: ReasonBlocklisted})
	}

	for _, f := range []struct {
		field ContextField
		words []string
	}{
		{FieldUsername, []string{pc.Username}},
		{FieldEmail, []string{emailLocalPart(pc.Email)}},
		{FieldService, []string{pc.ServiceName}},
		{FieldWord, pc.Words},
	} {
		if containsContextWord(folded, cores, f.words) {
			vs = append(vs, Violation{Reason: ReasonContextWord, Field: f.field})
		}
	}

	if c := p.cfg.BreachChecker; c != nil {
		buf := slices.Clone(norm)
		breached, err := c.Breached(ctx, buf)
		clear(buf)
		switch {
		case err != nil:
			vs = append(vs, Violation{Reason: ReasonBreachCheckFailed, cause: err})
		case breached:
			vs = append(vs, Violation{Reason: ReasonBreached})
		}
	}

	if len(vs) == 0 {
		return nil
	}
	return &PolicyError{Violations: vs}
}

// foldWord returns the case-folded NFKC form of w, the form in which the
// policy compares words.
func foldWord(w string) (string, bool) {
	n, err := normalize([]byte(w))
	if err != nil {
		return "", false
	}
	return cases.Fold().String(string(n)), true
}

// emailLocalPart returns the part of addr before its last '@', or addr
// itself if it has none.
func emailLocalPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// Minimum lengths, in code points, of context words.
const (
	contextWordMinLen     = 4 // matched anywhere in the password
	contextWordPaddedMin  = 3 // matched only as a core (the word with padding)
	blocklistCoreMinRunes = 4 // cores shorter than this are not looked up
)

// containsContextWord reports whether the folded password contains one of
// words or one of their alphanumeric runs, as documented on Check.
func containsContextWord(folded string, cores []string, words []string) bool {
	for _, w := range words {
		if w == "" {
			continue
		}
		fw, ok := foldWord(w)
		if !ok {
			continue // a context word that is not text cannot occur in a valid password
		}
		cands := append([]string{fw}, strings.FieldsFunc(fw, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsDigit(r)
		})...)
		for _, c := range cands {
			switch n := utf8.RuneCountInString(c); {
			case n >= contextWordMinLen:
				if strings.Contains(folded, c) {
					return true
				}
			case n >= contextWordPaddedMin:
				if folded == c || slices.Contains(cores, c) {
					return true
				}
			}
		}
	}
	return false
}
