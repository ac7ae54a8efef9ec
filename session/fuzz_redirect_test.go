package session

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzDecodeOneTime: a one-time token's stored record decodes without
// panicking, never with a purpose longer than its length byte allows, and
// what decodes re-encodes to the same bytes (truncated or extended
// records are refused).
func FuzzDecodeOneTime(f *testing.F) {
	for _, o := range []*oneTime{
		{purpose: PurposePasswordReset, created: 1767225600000, expires: 1767229200000},
		{purpose: PurposeMagicLink, created: 0, expires: -1},
		{purpose: OneTimePurpose(strings.Repeat("x", MaxOneTimePurposeLen)), created: 1, expires: 2},
		{purpose: "", created: 1, expires: 2},
	} {
		b := o.encode()
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(b, 0))
	}
	f.Add([]byte{oneTimeRecordVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, ok := decodeOneTime(b)
		if !ok {
			if o != nil {
				t.Fatalf("decodeOneTime(%x): a record and false", b)
			}
			return
		}
		if len(o.purpose) > 255 {
			t.Fatalf("decodeOneTime(%x): purpose of %d bytes", b, len(o.purpose))
		}
		if again := o.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decodeOneTime(%x) re-encodes to %x", b, again)
		}
	})
}

// fuzzBrowserTarget resolves a redirect target as a browser reads a
// Location header on https://site.example/login: it drops ASCII tabs and
// line breaks and reads a backslash as a slash (the WHATWG URL parser for
// special schemes), then resolves the result against the page. ok is
// false when Go's URL parser refuses it.
func fuzzBrowserTarget(s string) (*url.URL, bool) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, s)
	s = strings.TrimLeft(s, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	ref, err := url.Parse(s)
	if err != nil {
		return nil, false
	}
	base, _ := url.Parse("https://site.example/login")
	return base.ResolveReference(ref), true
}

// FuzzSafeRedirect: SafeRedirect never panics and returns next, the
// fallback or "/"; a target it accepts is at most MaxRedirectLen bytes,
// starts with a single "/", and stays on this site as a browser reads it
// (fuzzBrowserTarget), both as given and once percent-decoded (as a
// framework behind the redirect might decode it), with no "." or ".."
// segment that a later resolution could turn into "//host".
func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{
		"/", "/account", "/a/b?x=1#frag", "/a?next=//evil.example", "https://evil.example", "//evil.example",
		"/\\evil.example", "/%2F%2Fevil.example", "/%2f%5cevil.example", "/\t/evil.example", "javascript:alert(1)",
		"/..//evil.example", "/./", "/a/%2e%2e/%2e%2e//evil", "/%252F%252Fevil", "/é", "/%C3%A9", "/a b",
		"/%00", "/%0a/evil", "/@evil.example", "/:80", "/a:b", "\\\\evil", "/" + strings.Repeat("a", MaxRedirectLen),
		"", " /", "/%", "/%zz",
	} {
		f.Add(s, "/")
	}
	f.Add("//evil", "https://evil.example")
	f.Fuzz(func(t *testing.T, next, fallback string) {
		got := SafeRedirect(next, fallback)
		if got != next && got != fallback && got != "/" {
			t.Fatalf("SafeRedirect(%q, %q) = %q", next, fallback, got)
		}
		if !safeRedirect(next) {
			return
		}
		if got != next {
			t.Fatalf("SafeRedirect(%q, %q) = %q, yet next is safe", next, fallback, got)
		}
		if len(next) > MaxRedirectLen || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
			t.Fatalf("accepted %q", next)
		}
		for _, form := range []string{next, fuzzUnescapeOnce(next)} {
			u, ok := fuzzBrowserTarget(form)
			if !ok {
				continue
			}
			if u.Scheme != "https" || u.Host != "site.example" || u.User != nil {
				t.Fatalf("accepted %q, which a browser reads (as %q) as %s", next, form, u)
			}
			path, _, _ := strings.Cut(form, "?")
			path, _, _ = strings.Cut(path, "#")
			if strings.Contains(path, "/../") || strings.HasSuffix(path, "/..") || strings.Contains(path, "/./") || strings.HasSuffix(path, "/.") {
				t.Fatalf("accepted %q, with a dot segment in %q", next, form)
			}
		}
	})
}

func fuzzUnescapeOnce(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

// FuzzCheckBaseURL: the one-time tokens' BaseURL check never panics,
// refuses with ErrInvalidInput, and accepts only an https URL (http only
// for a loopback host) with a host, no user, query or fragment, and a safe
// path; what it returns has no trailing slash and is accepted again
// unchanged.
func FuzzCheckBaseURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com", "https://example.com/", "https://example.com/app/", "http://localhost:8080",
		"http://127.0.0.1", "http://[::1]:80/", "http://example.com", "https://user@example.com",
		"https://example.com?x", "https://example.com#x", "https://example.com/%2F%2Fevil", "https:///path",
		"https://example.com//evil", "https://example.com/..", "ftp://example.com", "https:example.com",
		"https://exa mple.com", "https://example.com:99999", "HTTPS://EXAMPLE.COM", "https://[::1", "", "https://example.com/app//", "https://example.com/a//b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := checkBaseURL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) || got != "" {
				t.Fatalf("checkBaseURL(%q) = %q, %v; want \"\", ErrInvalidInput", s, got, err)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Host == "" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("checkBaseURL(%q) = %q: %+v, %v", s, got, u, err)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && (u.Hostname() == "localhost" || strings.HasPrefix(u.Hostname(), "127.") || u.Hostname() == "::1" || strings.HasPrefix(u.Hostname(), "::ffff:127."))) {
			t.Fatalf("checkBaseURL(%q) = %q: scheme %q, host %q", s, got, u.Scheme, u.Hostname())
		}
		if strings.HasSuffix(got, "/") || len(got) > maxBaseURLLen {
			t.Fatalf("checkBaseURL(%q) = %q", s, got)
		}
		if again, err := checkBaseURL(got); err != nil || again != got {
			t.Fatalf("checkBaseURL(%q) = %q, which checks as %q, %v", s, got, again, err)
		}
		// A link built on it stays on the same host.
		link, err := url.Parse(got + "/reset?token=x")
		if err != nil || link.Host != u.Host || link.Scheme != u.Scheme {
			t.Fatalf("a link on %q goes to %v (%v)", got, link, err)
		}
	})
}
