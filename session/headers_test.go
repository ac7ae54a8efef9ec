package session_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/keyhold/keyhold/session"
)

// SES-17: the headers are on 200, 4xx and 5xx responses; HSTS only over
// HTTPS; each header can be replaced or left out.
func TestSecurityHeaders(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	h := session.SecurityHeaders(session.Headers{}, mux)
	want := map[string]string{
		"Content-Security-Policy":    session.DefaultContentSecurityPolicy,
		"X-Frame-Options":            "DENY",
		"X-Content-Type-Options":     "nosniff",
		"Referrer-Policy":            "no-referrer",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Strict-Transport-Security":  "max-age=31536000; includeSubDomains",
	}
	for _, path := range []string{"/ok", "/missing", "/boom"} {
		resp := serve(h, "", request{method: "GET", target: path})
		for name, value := range want {
			if got := resp.Header.Get(name); got != value {
				t.Errorf("%s (%d): %s = %q, want %q", path, resp.StatusCode, name, got, value)
			}
		}
	}
	resp := serve(h, "", request{method: "GET", target: "/ok", plain: true, header: http.Header{"X-Forwarded-Proto": {"https"}}})
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("HSTS over plain HTTP from an untrusted peer: %q", got)
	}
	proxied := session.SecurityHeaders(session.Headers{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, mux)
	resp = serve(proxied, "", request{method: "GET", target: "/ok", plain: true, header: http.Header{"X-Forwarded-Proto": {"https"}}})
	if got := resp.Header.Get("Strict-Transport-Security"); got == "" {
		t.Error("no HSTS behind a trusted TLS proxy")
	}

	custom := session.SecurityHeaders(session.Headers{ContentSecurityPolicy: "default-src 'none'", FrameOptions: session.Omit}, mux)
	resp = serve(custom, "", request{method: "GET", target: "/ok"})
	if resp.Header.Get("Content-Security-Policy") != "default-src 'none'" || resp.Header.Get("X-Frame-Options") != "" {
		t.Errorf("overrides not applied: %v", resp.Header)
	}
}
