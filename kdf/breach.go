package kdf

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// BreachChecker reports whether a password is known from a data breach.
// [Policy.Check] calls it with the whole NFKC form of the candidate
// password (ASVS V6.2.12, KDF-14).
//
// Contract: Breached must not modify, retain or log password, and must be
// safe for concurrent use. It returns (true, nil) if the password is known
// to be breached, (false, nil) if it is not, and a non-nil error only if
// the check could not be completed (network failure, timeout, ctx ended,
// malformed answer); the boolean is then ignored. It should honour ctx.
// Errors should not contain the password or anything derived from it.
//
// [PwnedChecker] implements it for the Pwned Passwords range API.
type BreachChecker interface {
	// Breached reports whether password is known to be breached, as the
	// contract above says.
	Breached(ctx context.Context, password []byte) (bool, error)
}

// Defaults for [PwnedCheckerConfig].
const (
	// DefaultPwnedBaseURL is the Have I Been Pwned Pwned Passwords API.
	DefaultPwnedBaseURL = "https://api.pwnedpasswords.com"

	// DefaultPwnedMaxResponseBytes bounds a range response. Real padded
	// responses are well under 64 KiB.
	DefaultPwnedMaxResponseBytes = 2 << 20

	// MaxPwnedMaxResponseBytes is the highest accepted MaxResponseBytes.
	MaxPwnedMaxResponseBytes = 64 << 20

	// DefaultPwnedTimeout is the timeout of the HTTP client used when
	// [PwnedCheckerConfig.HTTPClient] is nil.
	DefaultPwnedTimeout = 10 * time.Second

	// DefaultPwnedUserAgent is sent when [PwnedCheckerConfig.UserAgent]
	// is empty.
	DefaultPwnedUserAgent = "keyhold-kdf"

	// pwnedMaxLineBytes bounds one response line, excluding its line
	// break: 35 hex digits, a colon and a count of at most 19 digits fit
	// in 55.
	pwnedMaxLineBytes = 64

	// pwnedSuffixLen is the number of hex digits of the SHA-1 after the
	// 5-digit prefix.
	pwnedSuffixLen = 35
)

// PwnedCheckerConfig configures a [PwnedChecker]. The zero value uses the
// public Have I Been Pwned API with padding, a 10-second timeout and a
// 2 MiB response bound, and treats any appearance as breached.
type PwnedCheckerConfig struct {
	// BaseURL is the API root; requests go to BaseURL + "/range/" +
	// prefix. Empty selects DefaultPwnedBaseURL. It must be https unless
	// AllowInsecureHTTP is set.
	BaseURL string

	// HTTPClient sends the requests. Nil selects a private client with
	// DefaultPwnedTimeout.
	HTTPClient *http.Client

	// UserAgent is sent in the User-Agent header. Empty selects
	// DefaultPwnedUserAgent.
	UserAgent string

	// MinCount is how many times a password must appear in breaches to be
	// reported as breached. Zero selects 1 (any appearance).
	MinCount int64

	// MaxResponseBytes bounds the (decompressed) response body; a larger
	// response fails the check. Zero selects DefaultPwnedMaxResponseBytes;
	// at most MaxPwnedMaxResponseBytes.
	MaxResponseBytes int64

	// AllowInsecureHTTP permits an http:// BaseURL, for example a mirror
	// on localhost. A network attacker can then forge the answers.
	AllowInsecureHTTP bool
}

// PwnedChecker is a [BreachChecker] for the k-anonymity range API of Have
// I Been Pwned's Pwned Passwords, or a mirror of it. Only the first five
// hex digits of the password's SHA-1 leave the process: it fetches
// GET {BaseURL}/range/{PREFIX} with "Add-Padding: true" and looks for the
// remaining 35 digits among the "SUFFIX:COUNT" lines of the answer,
// ignoring padding lines (count 0). Build it with [NewPwnedChecker]; it is
// immutable and safe for concurrent use.
//
// Specification: https://haveibeenpwned.com/API/v3#PwnedPasswords
type PwnedChecker struct {
	cfg       PwnedCheckerConfig // resolved
	rangeBase string             // BaseURL + "/range/"
}

var _ BreachChecker = (*PwnedChecker)(nil)

// NewPwnedChecker validates cfg, fills in defaults and returns a checker.
func NewPwnedChecker(cfg PwnedCheckerConfig) (*PwnedChecker, error) {
	bad := func(format string, args ...any) (*PwnedChecker, error) {
		return nil, fmt.Errorf("kdf: invalid PwnedCheckerConfig: "+format, args...)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultPwnedBaseURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultPwnedTimeout}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultPwnedUserAgent
	}
	if cfg.MinCount == 0 {
		cfg.MinCount = 1
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultPwnedMaxResponseBytes
	}
	switch {
	case cfg.MinCount < 0:
		return bad("negative MinCount")
	case cfg.MaxResponseBytes < 0 || cfg.MaxResponseBytes > MaxPwnedMaxResponseBytes:
		return bad("MaxResponseBytes outside [1, %d]", MaxPwnedMaxResponseBytes)
	case strings.ContainsAny(cfg.UserAgent, "\r\n"):
		return bad("UserAgent contains a line break")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return bad("BaseURL does not parse")
	}
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && cfg.AllowInsecureHTTP):
		return bad("BaseURL scheme %q is not https", u.Scheme)
	case u.Host == "":
		return bad("BaseURL has no host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return bad("BaseURL must not have user info, a query or a fragment")
	}
	return &PwnedChecker{cfg: cfg, rangeBase: strings.TrimRight(u.String(), "/") + "/range/"}, nil
}

// Config returns the resolved configuration.
func (c *PwnedChecker) Config() PwnedCheckerConfig {
	if c == nil {
		return PwnedCheckerConfig{}
	}
	return c.cfg
}

// Breached implements [BreachChecker]. Every error it returns matches
// [ErrBreachCheckFailed], and also ctx.Err() if ctx ended. Its errors do
// not contain the request URL (which holds the hash prefix).
func (c *PwnedChecker) Breached(ctx context.Context, password []byte) (bool, error) {
	if c == nil {
		return false, errNilPwnedChecker
	}
	if c == nil || c.rangeBase == "" {
		return false, fmt.Errorf("%w: PwnedChecker not built with NewPwnedChecker", ErrBreachCheckFailed)
	}
	sum := sha1.Sum(password)
	var digits [2 * sha1.Size]byte
	const hexUpper = "0123456789ABCDEF"
	for i, b := range sum {
		digits[2*i], digits[2*i+1] = hexUpper[b>>4], hexUpper[b&0x0f]
	}
	defer clear(digits[:])
	clear(sum[:])

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.rangeBase+string(digits[:5]), nil)
	if err != nil {
		return false, fmt.Errorf("%w: building request", ErrBreachCheckFailed)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Add-Padding", "true")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return false, c.fail(ctx, "request", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%w: unexpected HTTP status %d", ErrBreachCheckFailed, resp.StatusCode)
	}
	found, err := parsePwnedRange(resp.Body, digits[5:], c.cfg.MinCount, c.cfg.MaxResponseBytes)
	if err == nil {
		// A response that raced with the end of ctx is not trusted.
		err = ctx.Err()
	}
	if err != nil {
		return false, c.fail(ctx, "response", err)
	}
	return found, nil
}

// fail wraps err in ErrBreachCheckFailed, preferring ctx's error and
// dropping the URL that *url.Error would add to the message.
func (c *PwnedChecker) fail(ctx context.Context, stage string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %s: %w", ErrBreachCheckFailed, stage, cerr)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(err, ErrBreachCheckFailed) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrBreachCheckFailed, stage, err)
}

// parsePwnedRange reads a range response and reports whether it lists
// suffix (35 uppercase hex digits) with a count of at least minCount.
//
// The body is at most maxBytes bytes of lines "SUFFIX:COUNT" separated by
// "\n" or "\r\n", each at most pwnedMaxLineBytes long, where SUFFIX is 35
// hex digits (either case) and COUNT 1 to 19 decimal digits. Empty lines
// are skipped and lines with count 0 (padding) are ignored. Any other
// content fails the whole response with an error matching
// ErrBreachCheckFailed. Every line is compared in constant time and the
// scan does not stop at a match.
func parsePwnedRange(body io.Reader, suffix []byte, minCount, maxBytes int64) (bool, error) {
	fail := func(format string, args ...any) (bool, error) {
		return false, fmt.Errorf("%w: "+format, append([]any{ErrBreachCheckFailed}, args...)...)
	}
	lr := &io.LimitedReader{R: body, N: maxBytes + 1}
	br := bufio.NewReaderSize(lr, 2*pwnedMaxLineBytes)
	var found int
	var line [pwnedSuffixLen]byte
	for n := 1; ; n++ {
		raw, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return fail("line %d too long", n)
		}
		if err != nil && err != io.EOF {
			return false, fmt.Errorf("%w: reading body: %w", ErrBreachCheckFailed, err)
		}
		if lr.N <= 0 {
			return fail("response larger than %d bytes", maxBytes)
		}
		l := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
		switch {
		case len(l) > pwnedMaxLineBytes:
			return fail("line %d too long", n)
		case len(l) == 0:
		case len(l) < pwnedSuffixLen+2 || l[pwnedSuffixLen] != ':':
			return fail("malformed line %d", n)
		default:
			for i, ch := range l[:pwnedSuffixLen] {
				switch {
				case '0' <= ch && ch <= '9', 'A' <= ch && ch <= 'F':
				case 'a' <= ch && ch <= 'f':
					ch -= 'a' - 'A'
				default:
					return fail("malformed line %d", n)
				}
				line[i] = ch
			}
			digits := l[pwnedSuffixLen+1:]
			if len(digits) > 19 || bytes.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
				return fail("malformed count on line %d", n)
			}
			count, perr := strconv.ParseInt(string(digits), 10, 64)
			if perr != nil {
				return fail("malformed count on line %d", n)
			}
			if count > 0 && count >= minCount { // count 0: padding
				found |= subtle.ConstantTimeCompare(line[:], suffix)
			}
		}
		if err == io.EOF {
			break
		}
	}
	clear(line[:])
	return found == 1, nil
}
