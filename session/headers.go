package session

import (
	"net/http"
	"net/netip"

	"github.com/keyhold/keyhold/internal/clientip"
)

// Omit, as the value of a Headers field, leaves that header out.
const Omit = "-"

// Defaults of Headers' zero values.
const (
	DefaultContentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'"
	DefaultFrameOptions          = "DENY"
	DefaultReferrerPolicy        = "no-referrer"
	DefaultStrictTransport       = "max-age=31536000; includeSubDomains"
	DefaultCrossOriginOpener     = "same-origin"
)

// Headers configures SecurityHeaders. Every empty field selects its strict
// default; Omit leaves the header out; any other value replaces it.
type Headers struct {
	// ContentSecurityPolicy: DefaultContentSecurityPolicy (scripts,
	// styles and images from the page's own origin only; no framing, no
	// plugins; forms post to the same origin).
	ContentSecurityPolicy string
	// FrameOptions (X-Frame-Options) for browsers without CSP
	// frame-ancestors: DENY.
	FrameOptions string
	// ReferrerPolicy: no-referrer, so that URLs carrying tokens (reset
	// links) never leak through Referer.
	ReferrerPolicy string
	// StrictTransportSecurity is sent only on HTTPS responses (a TLS
	// connection, or a trusted proxy that says so): max-age one year,
	// includeSubDomains.
	StrictTransportSecurity string
	// CrossOriginOpenerPolicy: same-origin.
	CrossOriginOpenerPolicy string
	// TrustedProxies whose X-Forwarded-Proto/Forwarded say whether the
	// client used HTTPS. Zero: none.
	TrustedProxies []netip.Prefix
}

// SecurityHeaders returns middleware that sets security headers on every
// response, before the handler runs (so 4xx and 5xx responses carry them
// too); X-Content-Type-Options: nosniff is always sent. A handler can still
// change a header for its own response.
func SecurityHeaders(h Headers, next http.Handler) http.Handler {
	pick := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	set := []struct{ name, value string }{
		{"Content-Security-Policy", pick(h.ContentSecurityPolicy, DefaultContentSecurityPolicy)},
		{"X-Frame-Options", pick(h.FrameOptions, DefaultFrameOptions)},
		{"Referrer-Policy", pick(h.ReferrerPolicy, DefaultReferrerPolicy)},
		{"Cross-Origin-Opener-Policy", pick(h.CrossOriginOpenerPolicy, DefaultCrossOriginOpener)},
		{"X-Content-Type-Options", "nosniff"},
	}
	hsts := pick(h.StrictTransportSecurity, DefaultStrictTransport)
	proxies := clientip.New(h.TrustedProxies)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		for _, s := range set {
			if s.value != Omit {
				hdr.Set(s.name, s.value)
			}
		}
		if hsts != Omit && proxies.HTTPS(r) {
			hdr.Set("Strict-Transport-Security", hsts)
		}
		next.ServeHTTP(w, r)
	})
}
