package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/keyhold/keyhold/internal/clientip"
)

// ErrNoClientIP means a request's client address could not be found (its
// RemoteAddr is not an address). Middleware keyed by address refuses such
// requests.
var ErrNoClientIP = errors.New("ratelimit: no client address")

// ClientOptions says how to find a request's client address. The zero
// value trusts no proxy and limits IPv6 clients per /64.
type ClientOptions struct {
	// TrustedProxies are the networks of the reverse proxies in front of
	// the app. Only when the connection's peer is inside one of them are
	// Forwarded or X-Forwarded-For read, from the right, skipping trusted
	// hops; the first untrusted hop is the client. Zero: no proxy is
	// trusted and the peer is the client, whatever the headers say.
	TrustedProxies []netip.Prefix
	// IPv6PrefixLen is the prefix that IPv6 clients are limited by: one
	// household or server usually holds a whole /64. Zero: 64. 128 limits
	// each address on its own (and lets a /64 holder multiply its budget
	// by 2^64).
	IPv6PrefixLen int
}

// A ClientResolver finds the client address of requests and turns it into
// a limiter key.
type ClientResolver struct {
	resolver clientip.Resolver
	v6bits   int
}

// NewClientResolver returns a ClientResolver for opts.
func NewClientResolver(opts ClientOptions) (*ClientResolver, error) {
	if opts.IPv6PrefixLen == 0 {
		opts.IPv6PrefixLen = 64
	}
	if opts.IPv6PrefixLen < 32 || opts.IPv6PrefixLen > 128 {
		return nil, fmt.Errorf("%w: IPv6 prefix length %d outside 32..128", ErrInvalidInput, opts.IPv6PrefixLen)
	}
	for _, p := range opts.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: invalid trusted proxy prefix", ErrInvalidInput)
		}
	}
	return &ClientResolver{resolver: clientip.New(opts.TrustedProxies), v6bits: opts.IPv6PrefixLen}, nil
}

// Client returns r's client address (see ClientOptions); ok is false if
// the request has none.
func (c *ClientResolver) Client(r *http.Request) (netip.Addr, bool) {
	if c == nil {
		return netip.Addr{}, false
	}
	return c.resolver.Client(r)
}

// ClientKey returns r's limiter key: the client's IPv4 address, or its
// IPv6 address masked to the configured prefix, as text ("192.0.2.1",
// "2001:db8:1:2::/64").
func (c *ClientResolver) ClientKey(r *http.Request) (string, error) {
	if c == nil {
		return "", errNilClientResolver
	}
	ip, ok := c.resolver.Client(r)
	if !ok {
		return "", ErrNoClientIP
	}
	return ClientKey(ip, c.v6bits), nil
}

// ClientKey returns the limiter key of the client address ip: an IPv4
// address on its own, an IPv6 address masked to v6bits (64 is the usual
// choice).
func ClientKey(ip netip.Addr, v6bits int) string {
	ip = ip.Unmap().WithZone("")
	if ip.Is4() || v6bits >= 128 {
		return ip.String()
	}
	p, err := ip.Prefix(v6bits)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

// A Key tells middleware what to limit a request by: its client address,
// an account named in it, or both.
type Key struct {
	name     string
	fn       func(*http.Request) (string, error)
	disclose bool
}

// ByIP limits each client address (IPv6: each prefix) on its own. Its
// decisions are sent to the client in RateLimit headers.
func ByIP(c *ClientResolver) Key {
	return Key{name: "ip", fn: c.ClientKey, disclose: true}
}

// ByAccount limits each account named in the request, whoever asks:
// account returns the name (for example from a form field, see
// [FormAccount]). Its quota state is never sent to the client (it would
// tell anyone about the account), and requests for which account fails
// are refused.
func ByAccount(account func(*http.Request) (string, error)) Key {
	return Key{name: "account", fn: account}
}

// ByIPAndAccount limits each pair of client address and account: one
// client's attempts on one account. Its quota state is not sent to the
// client either.
func ByIPAndAccount(c *ClientResolver, account func(*http.Request) (string, error)) Key {
	return Key{name: "ip+account", fn: func(r *http.Request) (string, error) {
		ip, err := c.ClientKey(r)
		if err != nil {
			return "", err
		}
		a, err := account(r)
		if err != nil {
			return "", err
		}
		return ip + "\x00" + a, nil
	}}
}

// MaxFormBytes bounds the request body that FormAccount reads.
const MaxFormBytes = 64 << 10

// ErrNoAccount means the request names no account (FormAccount's field is
// missing or empty, or too long).
var ErrNoAccount = errors.New("ratelimit: no account in request")

// FormAccount returns an account function for ByAccount that reads the
// form field (URL query or a url-encoded or multipart body of at most
// MaxFormBytes); the handler can read the parsed form afterwards.
func FormAccount(field string) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(nil, r.Body, MaxFormBytes)
		}
		v := r.FormValue(field)
		if v == "" || len(v) > MaxKeyLen/2 {
			return "", ErrNoAccount
		}
		return v, nil
	}
}

// A DenyFunc answers a request that a limiter refused (or could not decide
// on: d.Err is then set).
type DenyFunc func(w http.ResponseWriter, r *http.Request, d Decision)

// Middleware returns middleware that takes one unit from key's bucket for
// every request and calls deny (nil: DefaultDeny) for those refused.
// Decisions on ByIP keys are sent on every response, allowed or not, as
// the RateLimit-Policy and RateLimit fields of the IETF draft
// (draft-ietf-httpapi-ratelimit-headers) and the X-RateLimit-Limit,
// -Remaining and -Reset fields many clients know; decisions on keys that
// name an account are not. When the store fails, the request is refused
// unless the limiter fails open.
//
// Stack middleware to apply several limits (by address, then by account):
// each takes its own unit, the RateLimit fields list every disclosed
// policy, and the X-RateLimit fields show the one with the fewest units
// left.
func (l *Limiter) Middleware(key Key, deny DenyFunc) func(http.Handler) http.Handler {
	if l == nil {
		return func(http.Handler) http.Handler { return nilHandler }
	}
	if deny == nil {
		deny = DefaultDeny
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, err := key.fn(r)
			if err != nil {
				d := Decision{Policy: l.rule.Name, Limit: l.rule.Limit, Period: l.rule.Period, Err: err}
				l.log.LogAttrs(r.Context(), slog.LevelWarn, "input_validation_fail",
					slog.String("policy", l.rule.Name), slog.String("key", key.name), slog.String("error", err.Error()))
				deny(w, r, d)
				return
			}
			d, _ := l.Allow(r.Context(), k)
			d.disclose = key.disclose
			if d.disclose && d.Err == nil {
				WriteHeaders(w.Header(), d, d.At)
			}
			if !d.Allowed {
				deny(w, r, d)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// DefaultDeny answers 429 Too Many Requests with Retry-After (in whole
// seconds, rounded up; for keys that name an account, the rule's whole
// Period, which reveals nothing about the account) and a short plain-text
// body; when the decision
// failed (d.Err set, the store or the key), it answers 503 Service
// Unavailable with Retry-After: 1 instead, or 400 Bad Request when the
// request names no account or has no client address.
func DefaultDeny(w http.ResponseWriter, r *http.Request, d Decision) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	switch {
	case errors.Is(d.Err, ErrNoAccount) || errors.Is(d.Err, ErrNoClientIP) || errors.Is(d.Err, ErrInvalidInput):
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintln(w, "Bad request.")
	case d.Err != nil:
		h.Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "Service unavailable. Try again shortly.")
	default:
		retry := d.RetryAfter
		if !d.disclose {
			// The exact wait would tell anyone the account's quota state:
			// a whole period is always long enough.
			retry = d.Period
		}
		h.Set("Retry-After", strconv.FormatInt(ceilSeconds(retry), 10))
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintln(w, "Too many requests. Try again later.")
	}
}

// WriteHeaders adds d to h as RateLimit-Policy and RateLimit list members
// (RFC 9651 structured fields, as in draft-ietf-httpapi-ratelimit-headers:
// `"login";q=5;w=900` and `"login";r=4;t=180`, t being the seconds until
// one more unit is available) and sets X-RateLimit-Limit,
// X-RateLimit-Remaining and X-RateLimit-Reset (the Unix time at which the
// bucket is full again) unless h already shows a decision with fewer
// units remaining. now is the time of the decision.
func WriteHeaders(h http.Header, d Decision, now time.Time) {
	name := strconv.Quote(d.Policy) // names are restricted to token characters: no escaping needed beyond quotes
	h.Add("RateLimit-Policy", name+";q="+strconv.Itoa(d.Limit)+";w="+strconv.FormatInt(ceilSeconds(d.Period), 10))
	t := ceilSeconds(d.Next)
	if !d.Allowed {
		t = max(t, ceilSeconds(d.RetryAfter))
	}
	h.Add("RateLimit", name+";r="+strconv.Itoa(d.Remaining)+";t="+strconv.FormatInt(t, 10))
	if prev := h.Get("X-RateLimit-Remaining"); prev != "" {
		if n, err := strconv.Atoi(prev); err == nil && n <= d.Remaining {
			return
		}
	}
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(d.Reset).Add(time.Second-1).Unix(), 10))
}

// ceilSeconds rounds d up to whole seconds (never negative).
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
