package session

import (
	"net/url"
	"strings"
)

// MaxRedirectLen is the longest target SafeRedirect accepts, in bytes.
const MaxRedirectLen = 2048

// SafeRedirect returns next if it is a safe place to send the user after
// login (a "next=" or "return_to" parameter), else fallback (SES-19). A
// safe target is a path on this site: it starts with a single "/", is at
// most MaxRedirectLen bytes, and has no scheme, host or user information,
// no backslash, no control character and no "." or ".." path segment,
// neither as given nor once percent-decoded. So "https://evil.example", "//evil.example",
// "/\evil.example", "/%2F%2Fevil.example", "/\t/evil.example" and
// "javascript:…" all give fallback: browsers read several of them as
// another site's address. Query and fragment are kept.
//
// fallback should be a constant of the application (for example "/"); if
// it is not safe by the same rules, SafeRedirect returns "/".
func SafeRedirect(next, fallback string) string {
	if safeRedirect(next) {
		return next
	}
	if safeRedirect(fallback) {
		return fallback
	}
	return "/"
}

func safeRedirect(s string) bool {
	if len(s) == 0 || len(s) > MaxRedirectLen || !safeRedirectPath(s, false) {
		return false
	}
	// Percent-decoded (once, as a server or framework behind the
	// redirect might), it must still be a path on this site.
	if dec, err := url.PathUnescape(s); err != nil || !safeRedirectPath(dec, true) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == "" && strings.HasPrefix(u.Path, "/")
}

// safeRedirectPath checks the characters of s: a single leading "/", no
// backslash (browsers read it as "/") and no control character (browsers
// drop tabs and line breaks, so "/\t/evil" becomes "//evil"); as given
// (not decoded), also no space and only ASCII, as in a URL.
func safeRedirectPath(s string, decoded bool) bool {
	if len(s) == 0 || s[0] != '/' || (len(s) > 1 && (s[1] == '/' || s[1] == '\\')) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == '\\' || c == 0x7f || ((c == ' ' || c > 0x7f) && !decoded) {
			return false
		}
	}
	// No "." or ".." segment in the path: "/..//evil" resolves to
	// "//evil", which a later redirect could take for a host.
	path, _, _ := strings.Cut(s, "?")
	path, _, _ = strings.Cut(path, "#")
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
