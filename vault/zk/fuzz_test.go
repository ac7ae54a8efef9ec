package zk

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzReadWrite: a write's Keyhold-Expect header and body are read
// without panicking; every refusal is an apiError with the status the
// API documents (415 content type, 400 expect/body/empty, 413 over the
// bound); an accepted write has exactly one header value, written as
// the canonical decimal of a version below 2^64-1 (no sign, no leading
// zero, no space: one spelling per version), and a body of 1 to limit
// bytes, returned unchanged.
func FuzzReadWrite(f *testing.F) {
	for _, s := range []string{"0", "1", "42", "18446744073709551614", "18446744073709551615", "18446744073709551616",
		"01", "+1", "-1", " 1", "1 ", "0x10", "1e3", "", "１", "99999999999999999999"} {
		f.Add(s, "", "application/octet-stream", []byte("body"))
	}
	f.Add("1", "2", "application/octet-stream", []byte("body"))
	f.Add("1", "", "application/json", []byte("{}"))
	f.Add("1", "", "application/octet-stream", []byte{})
	f.Add("1", "", "application/octet-stream", bytes.Repeat([]byte{1}, 65))
	const limit = 64
	f.Fuzz(func(t *testing.T, expect, second, contentType string, body []byte) {
		r := httptest.NewRequest(http.MethodPut, "/records/x", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Header[ExpectHeader] = []string{expect}
		if second != "" {
			r.Header[ExpectHeader] = append(r.Header[ExpectHeader], second)
		}
		w := httptest.NewRecorder()
		n, got, err := readWrite(w, r, limit)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || got != nil || n != 0 {
				t.Fatalf("readWrite = %d, %x, %v", n, got, err)
			}
			switch ae.status {
			case http.StatusUnsupportedMediaType, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("readWrite refused with status %d (%s)", ae.status, ae.code)
			}
			if ae.status == http.StatusRequestEntityTooLarge && len(body) <= limit {
				t.Fatalf("a %d-byte body refused as too large", len(body))
			}
			return
		}
		if contentType != "application/octet-stream" || second != "" {
			t.Fatalf("accepted content type %q with Expect values %q, %q", contentType, expect, second)
		}
		if strconv.FormatUint(n, 10) != expect || n == ^uint64(0) {
			t.Fatalf("Expect %q read as %d", expect, n)
		}
		if len(got) == 0 || len(got) > limit || !bytes.Equal(got, body) {
			t.Fatalf("body of %d bytes read as %d bytes", len(body), len(got))
		}
	})
}

// FuzzCheckName: a record name is accepted exactly when it is 1 to
// MaxNameLen bytes of [A-Za-z0-9._~-] other than "." and "..", so that it
// is its own path segment (url.PathEscape leaves it as it is, and a
// browser's fetch does not resolve it away).
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"notes", "a.b_c~d-e", ".", "..", "...", "", "a/b", "a%2Fb", "é", "a b", strings.Repeat("a", MaxNameLen), strings.Repeat("a", MaxNameLen+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := checkName(name)
		want := name != "" && len(name) <= MaxNameLen && name != "." && name != ".." &&
			strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-") == ""
		if (err == nil) != want {
			t.Fatalf("checkName(%q) = %v; want accepted %v", name, err, want)
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
				t.Fatalf("checkName(%q) = %v; want a 400", name, err)
			}
			return
		}
		if url.PathEscape(name) != name {
			t.Fatalf("accepted %q, which escapes as %q", name, url.PathEscape(name))
		}
		u, err := url.Parse("https://site.example/zk/records/" + name)
		if err != nil || u.ResolveReference(&url.URL{}).Path != "/zk/records/"+name {
			t.Fatalf("accepted %q, which resolves away: %v", name, err)
		}
	})
}
