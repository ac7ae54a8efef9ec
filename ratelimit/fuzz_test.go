package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/ratelimit"
)

// Recognize never panics, and recognises a device exactly when the
// request carries, under the device cookie's name, the cookie that
// Remember made for that very account. Each run makes a fresh cookie for
// cookieFor and puts it wherever header has a '$'; the key is random per
// process, so no other cookie the fuzzer writes can be valid.
func FuzzDeviceCookie(f *testing.F) {
	d, err := ratelimit.NewDevices(randomBytes(ratelimit.DeviceKeyLen), ratelimit.DeviceOptions{Now: newClock().Now})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][3]string{
		{deviceCookie + "=$", "alice", "alice"},
		{deviceCookie + "=$", "bob", "alice"},
		{deviceCookie + "=$", "alicf", "alice"},
		{deviceCookie + "=$", "alice", "alice "},
		{deviceCookie + `="$"`, "alice", "alice"},
		{"a=b; " + deviceCookie + "=x; " + deviceCookie + "=$", "alice", "alice"},
		{deviceCookie + "=$A", "alice", "alice"},
		{deviceCookie + "=$$", "alice", "alice"},
		{"__host-keyhold-device=$", "alice", "alice"},
		{deviceCookie + "=AQAAAABosufAKQbJD5U7ZBCehhR20GK0m8JZlXjzgXjHKQ7-F0gWIduLTiyTy8pa2D5imaFhw7Ay", "alice", "alice"},
		{deviceCookie + "=$", strings.Repeat("x", 1024), strings.Repeat("x", 1024)},
		{deviceCookie + "=$", "", ""},
		{"", "alice", "alice"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, header, account, cookieFor string) {
		v := ""
		rec := httptest.NewRecorder()
		if d.Remember(rec, cookieFor) == nil {
			v = rec.Result().Cookies()[0].Value
			header = strings.ReplaceAll(header, "$", v)
		}
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		r.Header.Set("Cookie", header)
		want := false
		for _, c := range r.CookiesNamed(deviceCookie) {
			want = want || (v != "" && c.Value == v && account == cookieFor)
		}
		if got := d.Recognize(r, account).Known(); got != want {
			t.Fatalf("Cookie %q for %q (cookie made for %q): recognised %v, want %v", header, account, cookieFor, got, want)
		}
	})
}

// Without a trusted proxy, no header changes a request's client key; with
// trusted proxies, a request from an untrusted peer is keyed on the peer,
// and every key is an IPv4 address or an IPv6 /64.
func FuzzClientKey(f *testing.F) {
	direct := resolver(f)
	trusted := []string{"10.0.0.0/8", "2001:db8:ffff::/48"}
	proxied := resolver(f, trusted...)
	f.Add("10.0.0.1:443", "1.2.3.4, 9.9.9.9", "")
	f.Add("10.0.0.1:443", "", `for="[2001:db8:1::1]:80", for=10.0.0.2`)
	f.Add("9.9.9.9:1", "1.2.3.4", "for=1.2.3.4")
	f.Add("[::ffff:10.0.0.1]:443", "::ffff:1.2.3.4", "")
	f.Add("[2001:db8:ffff::1]:443", "unknown, garbage", "for=_x;proto=https")
	f.Add("[fe80::1%eth0]:1", "", "")
	f.Add("garbage", "1.2.3.4", "")
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		bare := httptest.NewRequest(http.MethodGet, "/", nil)
		bare.RemoteAddr = remote
		r := bare.Clone(bare.Context())
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Forwarded", fwd)
		r.Header.Set("X-Real-IP", xff)

		k0, err0 := direct.ClientKey(bare)
		k1, err1 := direct.ClientKey(r)
		if k0 != k1 || (err0 == nil) != (err1 == nil) {
			t.Fatalf("no trusted proxy: headers changed the key from %q (%v) to %q (%v)", k0, err0, k1, err1)
		}
		k2, err2 := proxied.ClientKey(r)
		if (err0 == nil) != (err2 == nil) {
			t.Fatalf("trusted proxies: error %v, without: %v", err2, err0)
		}
		if err2 != nil {
			return
		}
		peer := peerAddr(t, remote)
		peerTrusted := false
		for _, p := range trusted {
			peerTrusted = peerTrusted || netip.MustParsePrefix(p).Contains(peer)
		}
		if !peerTrusted && k2 != k0 {
			t.Fatalf("untrusted peer %s keyed %q, want %q", peer, k2, k0)
		}
		for _, k := range []string{k0, k2} {
			if a, err := netip.ParseAddr(k); err == nil {
				if !a.Is4() {
					t.Fatalf("key %q: an address, not IPv4", k)
				}
			} else if p, err := netip.ParsePrefix(k); err != nil || p.Bits() != 64 || !p.Addr().Is6() || p.Masked() != p {
				t.Fatalf("key %q: neither IPv4 nor an IPv6 /64", k)
			}
		}
	})
}

func peerAddr(t *testing.T, remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	a, err := netip.ParseAddr(remote)
	if err != nil {
		t.Fatalf("ClientKey accepted RemoteAddr %q", remote)
	}
	return a.Unmap().WithZone("")
}
