// Package clientip finds a request's client address and scheme, trusting
// forwarding headers only from configured proxies.
//
// The peer address of the connection is the client unless that peer is a
// trusted proxy. Only then are Forwarded (RFC 7239) or X-Forwarded-For read,
// from the right: each hop that is itself a trusted proxy is skipped, and
// the right-most untrusted hop is the client. Hops to its left were written
// by the client (or by proxies no one vouches for) and are never used, so a
// client that sends a forged header gains nothing. A hop that is not an
// address ("unknown", an obfuscated "_name", garbage) ends the walk: the
// client is then the last trusted proxy, as it is when every hop is trusted
// or after maxHops hops.
//
// Forwarded takes precedence over X-Forwarded-For (and its proto= over
// X-Forwarded-Proto): when a request carries a Forwarded header, the
// X-Forwarded-* headers are not read at all. The trusted proxies must
// therefore append to, overwrite or remove the header this package reads:
// a proxy that only appends X-Forwarded-For must strip a Forwarded header
// sent by the client, or the client chooses its own address.
//
// Of X-Forwarded-Proto and of Forwarded, only the last element counts, the
// one the nearest trusted proxy appended.
//
// Addresses are normalised: IPv4-mapped IPv6 addresses (::ffff:192.0.2.1)
// are IPv4, for trust and in results, and zones are dropped.
package clientip

import (
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// maxHops bounds the forwarding hops examined per request.
const maxHops = 32

// Resolver resolves client addresses. The zero value trusts no proxy.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts forwarding headers from peers inside
// the given prefixes. IPv4-mapped IPv6 prefixes (::ffff:10.0.0.0/104) are
// taken as the IPv4 prefixes they map; invalid prefixes are ignored.
func New(trusted []netip.Prefix) Resolver {
	t := make([]netip.Prefix, 0, len(trusted))
	for _, p := range trusted {
		if !p.IsValid() {
			continue
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		t = append(t, p.Masked())
	}
	return Resolver{trusted: t}
}

func (r Resolver) isTrusted(a netip.Addr) bool {
	a = normalize(a)
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func normalize(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// Peer returns the connection's remote address, normalised (IPv4-mapped
// addresses as IPv4, no zone); ok is false when it does not parse (a
// request built by hand, not served). It never reads a header.
func Peer(req *http.Request) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(req.RemoteAddr); err == nil {
		return normalize(ap.Addr()), true
	}
	if a, err := netip.ParseAddr(req.RemoteAddr); err == nil {
		return normalize(a), true
	}
	return netip.Addr{}, false
}

// Client returns the request's client address; ok is false when not even
// the peer address parses (a request built by hand, not served).
func (r Resolver) Client(req *http.Request) (netip.Addr, bool) {
	p, ok := Peer(req)
	if !ok || !r.isTrusted(p) {
		return p, ok
	}
	hops := forwardedFor(req)
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseNode(hops[i])
		if !ok {
			// We cannot go further left than the last proxy we trust.
			return p, true
		}
		if !r.isTrusted(a) {
			return a, true
		}
		p = a
	}
	return p, true
}

// HTTPS reports whether the client reached us over TLS: the connection is
// TLS, or the peer is a trusted proxy that says so (X-Forwarded-Proto or
// Forwarded proto=).
func (r Resolver) HTTPS(req *http.Request) bool {
	if req.TLS != nil {
		return true
	}
	p, ok := Peer(req)
	if !ok || !r.isTrusted(p) {
		return false
	}
	if f := req.Header.Values("Forwarded"); len(f) > 0 {
		v, _ := param(splitList(f, 1)[0], "proto")
		return strings.EqualFold(unquote(v), "https")
	}
	xfp := splitList(req.Header.Values("X-Forwarded-Proto"), 1)
	return len(xfp) > 0 && strings.EqualFold(xfp[0], "https")
}

// forwardedFor returns the last maxHops hops of Forwarded's for= parameters,
// or else of X-Forwarded-For, left to right.
func forwardedFor(req *http.Request) []string {
	if f := req.Header.Values("Forwarded"); len(f) > 0 {
		hops := splitList(f, maxHops)
		for i, elem := range hops {
			hops[i], _ = param(elem, "for") // "" if absent: ends the walk
		}
		return hops
	}
	return splitList(req.Header.Values("X-Forwarded-For"), maxHops)
}

// param returns the value of the last parameter named key in a Forwarded
// element ("for=192.0.2.1;proto=https").
func param(elem, key string) (v string, ok bool) {
	for pair := range strings.SplitSeq(elem, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(pair), "=")
		if strings.EqualFold(k, key) {
			v, ok = val, true
		}
	}
	return v, ok
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// parseNode parses a hop: an address, optionally quoted, optionally with a
// port ("192.0.2.1", "192.0.2.1:443", "2001:db8::1",
// "\"[2001:db8::1]:4711\"", "[2001:db8::1]:_obf"). Names, "unknown" and
// obfuscated nodes ("_hidden") do not parse.
func parseNode(v string) (netip.Addr, bool) {
	v = unquote(v)
	if rest, ok := strings.CutPrefix(v, "["); ok {
		host, port, ok := strings.Cut(rest, "]")
		if !ok || port != "" && !validPort(strings.TrimPrefix(port, ":")) {
			return netip.Addr{}, false
		}
		v = host
	} else if host, port, ok := strings.Cut(v, ":"); ok && !strings.Contains(port, ":") {
		if !validPort(port) {
			return netip.Addr{}, false
		}
		v = host
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, false
	}
	return normalize(a), true
}

// validPort reports whether p is a port number or an obfuscated port
// ("_" followed by letters, digits, ".", "_" or "-"; RFC 7239 section 6.3).
func validPort(p string) bool {
	if rest, ok := strings.CutPrefix(p, "_"); ok {
		return rest != "" && strings.Trim(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
	}
	_, err := strconv.ParseUint(p, 10, 16)
	return err == nil
}

// splitList splits comma-separated header values into trimmed elements and
// returns the last n of them, left to right. It works from the right, so a
// long header costs no more than a short one.
func splitList(values []string, n int) []string {
	var out []string
	for i := len(values) - 1; i >= 0 && len(out) < n; i-- {
		v := values[i]
		for len(out) < n {
			j := strings.LastIndexByte(v, ',')
			out = append(out, strings.TrimSpace(v[j+1:]))
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	slices.Reverse(out)
	return out
}
