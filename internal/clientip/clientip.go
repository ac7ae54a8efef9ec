// Package clientip finds a request's client address and scheme, trusting
// forwarding headers only from configured proxies.
//
// The peer address of the connection is the client unless that peer is a
// trusted proxy. Only then are Forwarded (RFC 7239) or X-Forwarded-For read,
// from the right: each hop that is itself a trusted proxy is skipped, and
// the right-most untrusted hop is the client. Hops to its left were written
// by the client (or by proxies no one vouches for) and are never used, so a
// client that sends a forged header gains nothing.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxHops bounds the forwarding hops examined per request.
const maxHops = 32

// Resolver resolves client addresses. The zero value trusts no proxy.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts forwarding headers from peers inside
// the given prefixes.
func New(trusted []netip.Prefix) Resolver {
	t := make([]netip.Prefix, len(trusted))
	for i, p := range trusted {
		t[i] = p.Masked()
	}
	return Resolver{trusted: t}
}

func (r Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peer parses the connection's remote address.
func peer(req *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(req.RemoteAddr)
	if err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// Client returns the request's client address; ok is false when not even
// the peer address parses (a request built by hand, not served).
func (r Resolver) Client(req *http.Request) (netip.Addr, bool) {
	p, ok := peer(req)
	if !ok || !r.isTrusted(p) {
		return p, ok
	}
	hops := forwardedFor(req)
	for i := len(hops) - 1; i >= 0 && len(hops)-i <= maxHops; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			// An unparseable hop (a name, "unknown", garbage): we
			// cannot go further left than the last proxy we trust.
			return p, true
		}
		a = a.Unmap()
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
	p, ok := peer(req)
	if !ok || !r.isTrusted(p) {
		return false
	}
	if f := req.Header.Values("Forwarded"); len(f) > 0 {
		elems := splitList(f)
		last := elems[len(elems)-1]
		for pair := range strings.SplitSeq(last, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if strings.EqualFold(k, "proto") {
				return strings.EqualFold(strings.Trim(v, `"`), "https")
			}
		}
		return false
	}
	xfp := splitList(req.Header.Values("X-Forwarded-Proto"))
	return len(xfp) > 0 && strings.EqualFold(xfp[len(xfp)-1], "https")
}

// forwardedFor returns the hops of Forwarded's for= parameters, or else of
// X-Forwarded-For, left to right.
func forwardedFor(req *http.Request) []string {
	if f := req.Header.Values("Forwarded"); len(f) > 0 {
		var hops []string
		for _, elem := range splitList(f) {
			hop := ""
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(k, "for") {
					hop = forwardedNode(v)
				}
			}
			hops = append(hops, hop)
		}
		return hops
	}
	return splitList(req.Header.Values("X-Forwarded-For"))
}

// forwardedNode turns a Forwarded node ("192.0.2.1", "\"[2001:db8::1]:80\"",
// "192.0.2.1:443") into an address string.
func forwardedNode(v string) string {
	v = strings.Trim(v, `"`)
	if strings.HasPrefix(v, "[") {
		if end := strings.IndexByte(v, ']'); end > 0 {
			return v[1:end]
		}
		return v
	}
	if host, _, ok := strings.Cut(v, ":"); ok && strings.Count(v, ":") == 1 {
		return host
	}
	return v
}

// splitList splits comma-separated header values into trimmed elements,
// keeping at most the last 4*maxHops.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	if len(out) > 4*maxHops {
		out = out[len(out)-4*maxHops:]
	}
	return out
}
