package ratelimit_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
)

const deviceCookie = "__Host-keyhold-device"

// remember returns the cookie that d.Remember sets for account.
func remember(t *testing.T, d *ratelimit.Devices, account string) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := d.Remember(rec, account); err != nil {
		t.Fatal(err)
	}
	sc := rec.Header().Values("Set-Cookie")
	if len(sc) != 1 {
		t.Fatalf("Remember set %d cookies", len(sc))
	}
	c, err := http.ParseSetCookie(sc[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withCookies is a login request carrying cookies (name=value pairs).
func withCookies(remoteAddr string, cookies ...*http.Cookie) *http.Request {
	r := postForm("https://app.example/login", remoteAddr, "")
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

// The device cookie is __Host-, Secure, HttpOnly, SameSite=Lax, Path=/,
// with no Domain, and lives TTL (Max-Age); its value is opaque and
// different on every Remember.
func TestDeviceCookieAttributes(t *testing.T) {
	d := newDevices(t, newClock())
	c := remember(t, d, "alice")
	if c.Name != deviceCookie || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("cookie attributes: %+v", c)
	}
	if c.MaxAge != 90*24*3600 {
		t.Errorf("Max-Age %d, want 90 days", c.MaxAge)
	}
	if strings.Contains(c.Value, "alice") || len(c.Value) != 76 {
		t.Errorf("cookie value %q: want 76 opaque characters", c.Value)
	}
	if c2 := remember(t, d, "alice"); c2.Value == c.Value {
		t.Error("two Remembers gave the same cookie")
	}

	short, err := ratelimit.NewDevices(deviceKey(1), ratelimit.DeviceOptions{TTL: time.Hour, CookieName: "dev", AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	c = remember(t, short, "alice")
	if c.Name != "dev" || c.Secure || !c.HttpOnly || c.MaxAge != 3600 {
		t.Errorf("insecure cookie attributes: %+v", c)
	}
	rec := httptest.NewRecorder()
	if err := d.Remember(rec, ""); !errors.Is(err, ratelimit.ErrInvalidInput) || rec.Header().Get("Set-Cookie") != "" {
		t.Errorf("Remember(\"\") = %v, set %q", err, rec.Header().Get("Set-Cookie"))
	}
}

// Recognize accepts a cookie only for the account it was made for, with
// the key it was made with, until it expires, and unaltered.
func TestDeviceRecognition(t *testing.T) {
	c := newClock()
	d := newDevices(t, c)
	alice := remember(t, d, "alice")
	const ip = "192.0.2.1:4711"
	known := func(r *http.Request, account string) bool { return d.Recognize(r, account).Known() }

	if !known(withCookies(ip, alice), "alice") {
		t.Fatal("a fresh cookie is not recognised")
	}
	if known(withCookies(ip, alice), "bob") || known(withCookies(ip, alice), "alice ") || known(withCookies(ip, alice), "Alice") {
		t.Error("alice's cookie is recognised for another account")
	}
	if known(withCookies(ip), "alice") {
		t.Error("no cookie, recognised")
	}
	other, _ := ratelimit.NewDevices(deviceKey(2), ratelimit.DeviceOptions{Now: c.Now})
	if other.Recognize(withCookies(ip, alice), "alice").Known() {
		t.Error("a cookie is recognised under another key")
	}
	renamed, _ := ratelimit.NewDevices(deviceKey(1), ratelimit.DeviceOptions{Now: c.Now, CookieName: "__Host-other"})
	if renamed.Recognize(withCookies(ip, alice), "alice").Known() {
		t.Error("a cookie is recognised under another name")
	}
	// One bad cookie of the name does not hide a good one.
	bad := &http.Cookie{Name: deviceCookie, Value: "garbage"}
	if !known(withCookies(ip, bad, alice), "alice") {
		t.Error("a valid cookie after an invalid one is not recognised")
	}

	// Every single-character change is refused.
	for i := range len(alice.Value) {
		for _, v := range []string{tamper(alice.Value, i), alice.Value[:i] + "+" + alice.Value[i+1:], alice.Value[:i] + "=" + alice.Value[i+1:]} {
			if known(withCookies(ip, &http.Cookie{Name: deviceCookie, Value: v}), "alice") {
				t.Fatalf("cookie with character %d changed (%q) recognised", i, v)
			}
		}
	}
	// Wrong lengths.
	for _, v := range []string{"", alice.Value[:75], alice.Value + "A", alice.Value + "=", alice.Value[:72], strings.Repeat(alice.Value, 2)} {
		if known(withCookies(ip, &http.Cookie{Name: deviceCookie, Value: v}), "alice") {
			t.Errorf("cookie of %d characters recognised", len(v))
		}
	}
	// The same bytes with standard base64 or padding are refused.
	raw, err := base64.RawURLEncoding.DecodeString(alice.Value)
	if err != nil {
		t.Fatal(err)
	}
	if std := base64.StdEncoding.EncodeToString(raw); std != alice.Value && known(withCookies(ip, &http.Cookie{Name: deviceCookie, Value: std}), "alice") {
		t.Error("standard base64 recognised")
	}

	// Expiry: recognised until 90 days after Remember, not at.
	c.Advance(90*24*time.Hour - time.Second)
	if !known(withCookies(ip, alice), "alice") {
		t.Error("not recognised 1 s before it expires")
	}
	c.Advance(time.Second)
	if known(withCookies(ip, alice), "alice") {
		t.Error("recognised when it expires")
	}
	c.Advance(1000 * 24 * time.Hour)
	if known(withCookies(ip, alice), "alice") {
		t.Error("recognised long after it expired")
	}
}

// Keys and options outside their bounds are refused.
func TestNewDevicesInvalid(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if d, err := ratelimit.NewDevices(make([]byte, n), ratelimit.DeviceOptions{}); !errors.Is(err, ratelimit.ErrInvalidInput) || d != nil {
			t.Errorf("NewDevices(key of %d bytes) = %v, %v; want ErrInvalidInput", n, d, err)
		}
	}
	for _, opts := range []ratelimit.DeviceOptions{
		{AllowInsecureCookies: true}, // the default name is __Host-
		{AllowInsecureCookies: true, CookieName: "__Host-dev"},
		{AllowInsecureCookies: true, CookieName: "__Secure-dev"},
		{TTL: -time.Hour},
	} {
		if d, err := ratelimit.NewDevices(deviceKey(1), opts); !errors.Is(err, ratelimit.ErrInvalidInput) || d != nil {
			t.Errorf("NewDevices(%+v) = %v, %v; want ErrInvalidInput", opts, d, err)
		}
	}
}

// RL-04: an attacker who locks the account, from one address or from 50,
// does not lock out the owner on a device the owner logged in from
// before: the device cookie gives it a counter of its own. A forged,
// expired, tampered or other account's cookie, or one signed with another
// key, gets the attacker's address's counter, which is locked; a new
// address is locked only by the 50 addresses' attack (the account's
// counter); Lockout.Reset unlocks that.
func TestKnownDeviceSurvivesLockout(t *testing.T) {
	for _, attackers := range []int{1, 50} {
		t.Run(map[int]string{1: "from one address", 50: "from 50 addresses"}[attackers], func(t *testing.T) {
			c := newClock()
			lockout := newLockout(t, memstore.New(), ratelimit.LockoutPolicy{}, c)
			devices := newDevices(t, c)
			shortLived, err := ratelimit.NewDevices(deviceKey(1), ratelimit.DeviceOptions{TTL: time.Minute, Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			otherKey, err := ratelimit.NewDevices(deviceKey(9), ratelimit.DeviceOptions{Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			const owner = "192.0.2.10:5000"

			// login is the documented handler's lockout part, with the
			// owner's right password or an attacker's wrong one.
			login := func(r *http.Request, account string, right bool) error {
				ip, _ := netip.ParseAddrPort(r.RemoteAddr)
				att, err := lockout.Begin(ctx, account, ratelimit.Source{IP: ip.Addr(), Device: devices.Recognize(r, account)})
				if err != nil {
					return err
				}
				if !right {
					att.Failed(ctx)
					return errors.New("wrong password")
				}
				return att.Succeeded(ctx)
			}

			// The owner logged in on this device before; so did the attacker,
			// on their own account.
			if err := login(withCookies(owner), "alice", true); err != nil {
				t.Fatal(err)
			}
			ownerCookie := remember(t, devices, "alice")
			malloryCookie := remember(t, devices, "mabel") // the same length as alice
			expiring := remember(t, shortLived, "alice")
			foreign := remember(t, otherKey, "alice")

			// The attack: 200 guesses, spread over the attackers' addresses.
			admitted := 0
			for i := range 200 {
				ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % attackers)})
				r := withCookies(netip.AddrPortFrom(ip, 1234).String())
				if err := login(r, "alice", false); !errors.Is(err, ratelimit.ErrLocked) {
					admitted++
				}
			}
			// One address: its own counter locks after 10. Fifty: each stays
			// under 10, and the account's counter locks after 100.
			if want := map[int]int{1: 10, 50: 100}[attackers]; admitted != want {
				t.Fatalf("the attack got %d guesses, want %d", admitted, want)
			}
			c.Advance(time.Minute) // the short-lived cookie has expired; the lock (1h) has not

			if !devices.Recognize(withCookies(owner, ownerCookie), "alice").Known() {
				t.Fatal("the owner's cookie is not recognised")
			}
			// The owner, on the known device, mistypes once, then gets in.
			if err := login(withCookies(owner, ownerCookie), "alice", false); errors.Is(err, ratelimit.ErrLocked) {
				t.Fatal("the owner's known device is locked out")
			}
			if err := login(withCookies(owner, ownerCookie), "alice", true); err != nil {
				t.Fatalf("the owner's known device: %v", err)
			}

			tampered := *ownerCookie
			tampered.Value = tamper(tampered.Value, 40)
			forged := &http.Cookie{Name: deviceCookie, Value: base64.RawURLEncoding.EncodeToString(append([]byte{1}, randomBytes(56)...))}
			for _, tc := range []struct {
				name   string
				cookie *http.Cookie
			}{
				{"no cookie", nil},
				{"forged", forged},
				{"expired", expiring},
				{"another account's", malloryCookie},
				{"tampered", &tampered},
				{"signed with another key", foreign},
			} {
				r := withCookies("203.0.113.0:1234")
				if tc.cookie != nil {
					r = withCookies("203.0.113.0:1234", tc.cookie)
				}
				if err := login(r, "alice", true); !errors.Is(err, ratelimit.ErrLocked) {
					t.Errorf("%s cookie from an attacker's address, right password: %v, want ErrLocked", tc.name, err)
				}
			}
			// From a new address without a cookie: locked only when the
			// account's own counter is (the distributed attack).
			err = login(withCookies("198.51.100.7:1234"), "alice", true)
			if attackers == 1 && err != nil {
				t.Errorf("a new address, right password, after one address's attack: %v, want in", err)
			}
			if attackers == 50 && !errors.Is(err, ratelimit.ErrLocked) {
				t.Errorf("a new address, right password, after 50 addresses' attack: %v, want ErrLocked", err)
			}

			// The shared counter and the device's are separate both ways: the
			// device's failures do not count on the shared counter.
			if err := lockout.Reset(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			for range 10 {
				login(withCookies(owner, ownerCookie), "alice", false)
			}
			if err := login(withCookies(owner, ownerCookie), "alice", true); !errors.Is(err, ratelimit.ErrLocked) {
				t.Errorf("the device's own counter after 10 failures: %v, want locked", err)
			}
			if err := login(withCookies("198.51.100.7:1234"), "alice", true); err != nil {
				t.Errorf("after Reset, the shared counter: %v", err)
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// tamper changes the base64url character at i to the next one in the
// alphabet, so that the value still decodes, to different bytes.
func tamper(value string, i int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	v := []byte(value)
	v[i] = alphabet[(strings.IndexByte(alphabet, v[i])+1)%64]
	return string(v)
}
