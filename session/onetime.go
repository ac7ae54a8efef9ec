package session

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/keyhold/keyhold/storage"
)

// One-time token settings (SES-20).
const (
	// DefaultOneTimeTTL is OneTimeConfig.TTL's default.
	DefaultOneTimeTTL = time.Hour
	// MaxOneTimeTTL is the longest OneTimeConfig.TTL: one-time tokens
	// are sent by email, and NIST SP 800-63B §4.2.1.2 caps those at 24 h.
	MaxOneTimeTTL = 24 * time.Hour
	// MaxOneTimePurposeLen is the longest OneTimePurpose, in bytes.
	MaxOneTimePurposeLen = 32
	// maxBaseURLLen bounds OneTimeConfig.BaseURL.
	maxBaseURLLen = 512
	// oneTimeRecordVersion is the first byte of a one-time token's
	// record (FORMAT.md §4.5).
	oneTimeRecordVersion = 1
	labelOneTimeID       = "keyhold/v1/session/one-time\x00"
)

// ErrOneTimeTokenInvalid is the one answer of OneTimeTokens.Consume to a
// token that does not work: malformed, unknown, already used, expired, or
// issued for another purpose. It does not say which.
var ErrOneTimeTokenInvalid = errors.New("session: invalid or expired one-time token")

// A OneTimePurpose names what a one-time token is for, chosen by the app:
// 1 to MaxOneTimePurposeLen bytes of [a-z0-9_-], e.g. "password_reset",
// "email_verify", "magic_link". A token is only accepted for the purpose
// it was issued for.
type OneTimePurpose string

// Common purposes. Any other valid OneTimePurpose works as well.
const (
	PurposePasswordReset OneTimePurpose = "password_reset"
	PurposeEmailVerify   OneTimePurpose = "email_verify"
	PurposeMagicLink     OneTimePurpose = "magic_link"
)

func (p OneTimePurpose) valid() bool {
	if len(p) == 0 || len(p) > MaxOneTimePurposeLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// OneTimeConfig configures OneTimeTokens.
type OneTimeConfig struct {
	// BaseURL is the site's own origin (and optional path prefix), e.g.
	// "https://example.com" or "https://example.com/app". Every link
	// starts with it: links are never built from a request's Host header
	// (reset-link poisoning). Required; https, or http only for a
	// loopback host (localhost, 127.0.0.0/8, ::1); no userinfo, query,
	// fragment or empty path segment ("//").
	BaseURL string
	// TTL is how long a token stays valid. Zero: DefaultOneTimeTTL; at
	// most MaxOneTimeTTL.
	TTL time.Duration
}

// OneTimeTokens issues and consumes single-use tokens for links sent by
// email: password reset, email verification, magic links (SES-20).
//
// A token is 256 bits from crypto/rand. The store keeps only a hash of it
// (as a storage.RefreshFamily record, FORMAT.md §4.5), with its user,
// purpose and expiry; Consume takes it with a compare-and-swap, so it works
// once, even when presented concurrently. Tokens never reach the logs.
// Manager.RevokeAll and Manager.RevokeOthers, which delete the user's
// refresh families, delete the user's outstanding one-time tokens too (an
// email-verification link must then be sent again).
//
// Consume logs nobody in. For a password reset the app sets the new
// password first, then calls RevokeAll, and lets the user log in normally
// (with their second factor, if they have one); it never calls Login on
// the strength of a reset token.
//
// Rate limits are the app's: limit Issue per account and per client
// address with package ratelimit (RL-12), and answer a reset request the
// same way whether or not the account exists.
type OneTimeTokens struct {
	m    *Manager
	base string
	ttl  time.Duration
}

// NewOneTimeTokens returns a OneTimeTokens over m's store, or an error
// wrapping ErrInvalidInput if cfg is not valid.
func (m *Manager) NewOneTimeTokens(cfg OneTimeConfig) (*OneTimeTokens, error) {
	if m == nil {
		return nil, errNilManager
	}
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.TTL == 0:
		cfg.TTL = DefaultOneTimeTTL
	case cfg.TTL < time.Second || cfg.TTL > MaxOneTimeTTL:
		return nil, fmt.Errorf("%w: one-time token TTL %v is not between 1 s and %v", ErrInvalidInput, cfg.TTL, MaxOneTimeTTL)
	}
	return &OneTimeTokens{m: m, base: base, ttl: cfg.TTL}, nil
}

// checkBaseURL returns the base URL without a trailing slash.
func checkBaseURL(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: one-time token BaseURL: %s", ErrInvalidInput, why)
	}
	if s == "" || len(s) > maxBaseURLLen {
		return bad("empty or too long")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return bad("a space, control, backslash or non-ASCII character")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URL")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "?#@") || u.Opaque != "" {
		return bad("userinfo, query or fragment")
	}
	host := u.Hostname()
	if host == "" {
		return bad("no host")
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return bad("http is allowed only for a loopback host")
		}
	default:
		return bad("the scheme is not https")
	}
	if u.Path != "" && !safeRedirect(u.EscapedPath()) {
		return bad("unsafe path")
	}
	// An empty segment ("/app//", "/a//b") is refused: trimmed of one
	// slash it would still end in "/", and links built on it would carry
	// a "//" that some servers fold and others route elsewhere.
	if strings.Contains(u.EscapedPath(), "//") {
		return bad("an empty path segment")
	}
	return strings.TrimSuffix(s, "/"), nil
}

// oneTime is a one-time token's record (FORMAT.md §4.5).
type oneTime struct {
	purpose OneTimePurpose
	created int64
	expires int64
}

func (o *oneTime) encode() []byte {
	b := make([]byte, 0, 2+len(o.purpose)+16)
	b = append(b, oneTimeRecordVersion, byte(len(o.purpose)))
	b = append(b, o.purpose...)
	b = binary.BigEndian.AppendUint64(b, uint64(o.created))
	return binary.BigEndian.AppendUint64(b, uint64(o.expires))
}

func decodeOneTime(b []byte) (*oneTime, bool) {
	if len(b) < 2 || b[0] != oneTimeRecordVersion || len(b) != 2+int(b[1])+16 {
		return nil, false
	}
	n := 2 + int(b[1])
	return &oneTime{
		purpose: OneTimePurpose(b[2:n]),
		created: int64(binary.BigEndian.Uint64(b[n:])),
		expires: int64(binary.BigEndian.Uint64(b[n+8:])),
	}, true
}

func oneTimeID(token []byte) []byte { return labelledHash(labelOneTimeID, token) }

// Issue creates a token for userID and purpose and returns the link to
// send: BaseURL ‖ path ‖ "?token=" ‖ token, and when the token expires.
// path is a path on the site ("/reset"), checked as SafeRedirect checks
// one, without a query or fragment. Issue reads no request: the link's
// host is always BaseURL's. The link is a secret: send it to the user's
// address, never log it.
func (o *OneTimeTokens) Issue(ctx context.Context, userID string, purpose OneTimePurpose, path string) (link string, expires time.Time, err error) {
	if o == nil || o.m == nil {
		return "", time.Time{}, errNilManager
	}
	if err := checkUserID(userID); err != nil {
		return "", time.Time{}, err
	}
	if !purpose.valid() {
		return "", time.Time{}, fmt.Errorf("%w: one-time token purpose", ErrInvalidInput)
	}
	if !safeRedirect(path) || strings.ContainsAny(path, "?#") {
		return "", time.Time{}, fmt.Errorf("%w: one-time link path", ErrInvalidInput)
	}
	token := newToken()
	defer clear(token)
	id := oneTimeID(token)
	now := o.m.now()
	expires = now.Add(o.ttl).Truncate(time.Millisecond)
	rec := &oneTime{purpose: purpose, created: now.UnixMilli(), expires: expires.UnixMilli()}
	err = o.m.store.PutRefreshFamily(ctx, storage.RefreshFamily{ID: id, UserID: userID, Expires: expires, Data: rec.encode()}, 0)
	if err != nil {
		return "", time.Time{}, err
	}
	o.m.event(ctx, slog.LevelInfo, "authn_onetime_created", userID, "", slog.String("purpose", string(purpose)))
	return o.base + path + "?token=" + b64.EncodeToString(token), expires, nil
}

// Consume checks a token presented for purpose and, if it is valid, takes
// it (it never works again) and returns the user it was issued to. Every
// failure is ErrOneTimeTokenInvalid (or a store error), whichever check
// failed. A token presented for another purpose is refused and NOT used
// up: it still works for its own purpose.
//
// Consume logs nobody in; see OneTimeTokens.
func (o *OneTimeTokens) Consume(ctx context.Context, token string, purpose OneTimePurpose) (userID string, err error) {
	if o == nil || o.m == nil {
		return "", errNilManager
	}
	raw, ok := parseToken(token)
	if !ok || !purpose.valid() {
		return "", ErrOneTimeTokenInvalid
	}
	defer clear(raw)
	id := oneTimeID(raw)
	stored, err := o.m.store.GetRefreshFamily(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrOneTimeTokenInvalid
	}
	if err != nil {
		return "", err
	}
	rec, ok := decodeOneTime(stored.Data)
	if !ok {
		return "", ErrOneTimeTokenInvalid
	}
	match := subtle.ConstantTimeCompare([]byte(rec.purpose), []byte(purpose)) == 1
	if !match || o.m.now().UnixMilli() >= rec.expires {
		return "", ErrOneTimeTokenInvalid
	}
	// Take it: a put at the version read with an expiry long past is a
	// conditional delete. Of concurrent takers exactly one succeeds.
	err = o.m.store.PutRefreshFamily(ctx, storage.RefreshFamily{ID: id, UserID: stored.UserID, Expires: longPast, Data: stored.Data}, stored.Version)
	if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
		return "", ErrOneTimeTokenInvalid
	}
	if err != nil {
		return "", err
	}
	o.m.event(ctx, slog.LevelInfo, "authn_onetime_consumed", stored.UserID, "", slog.String("purpose", string(purpose)))
	return stored.UserID, nil
}
