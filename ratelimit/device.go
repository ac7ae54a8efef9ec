package ratelimit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/notify"
)

// DeviceKeyLen is the length of the key that signs device cookies.
const DeviceKeyLen = 32

const (
	deviceVersion   = 1
	deviceIDLen     = 16
	deviceTagLen    = sha256.Size
	deviceRawLen    = 1 + 8 + deviceIDLen + deviceTagLen
	deviceCookieLen = (deviceRawLen*8 + 5) / 6 // base64url without padding
	deviceMACLabel  = "keyhold/v1/ratelimit/device\x00"
	// maxDeviceCookies is the most device cookies of one request that
	// Recognize checks.
	maxDeviceCookies = 4
)

// A Device is a device that has logged in to an account before, as
// proved by a cookie that [Devices.Remember] set. The zero Device is
// "not recognised".
type Device struct {
	id [deviceIDLen]byte
	ok bool
}

// Known reports whether the device was recognised.
func (d Device) Known() bool { return d.ok }

// DeviceOptions configures Devices. The zero value is ready to use.
type DeviceOptions struct {
	// CookieName is the cookie's name. Zero: "__Host-keyhold-device".
	CookieName string
	// TTL is how long a device stays recognised after its last
	// successful login. Zero: 90 days.
	TTL time.Duration
	// AllowInsecureCookies sets the cookie without Secure, for local
	// development over plain HTTP; CookieName must then not start with
	// "__Host-" or "__Secure-" (browsers drop such cookies without
	// Secure).
	AllowInsecureCookies bool
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// Notifier, if set, hears keyhold.NewDeviceLogin from RememberLogin
	// when a successful login's request carried no device cookie of the
	// account. See keyhold.Notifier: it must return quickly; a panic in
	// it is recovered and dropped (Devices logs nothing).
	Notifier keyhold.Notifier
}

// Devices recognises devices that have logged in to an account before,
// so that a Lockout can give them a counter of their own (the "device
// cookie" defence against lockout denial of service). After a successful
// login, Remember sets an HttpOnly cookie holding a random device ID, its
// expiry and an HMAC-SHA256 tag over both and the account name; Recognize
// accepts the cookie only for that account, unexpired and with a valid
// tag. An attacker cannot make up a recognised device without the key, so
// whatever they try from elsewhere counts against the account's shared
// counter, never against the owner's device.
//
// The key only signs device cookies: it opens no user data. Keep it
// secret and the same on every instance; changing it forgets every
// device (their owners fall back to the shared counter).
type Devices struct {
	key  [DeviceKeyLen]byte
	opts DeviceOptions
}

// NewDevices returns Devices that sign with key (DeviceKeyLen bytes from
// crypto/rand, kept by the app like any other secret).
func NewDevices(key []byte, opts DeviceOptions) (*Devices, error) {
	if len(key) != DeviceKeyLen {
		return nil, fmt.Errorf("%w: device key of %d bytes, want %d", ErrInvalidInput, len(key), DeviceKeyLen)
	}
	if opts.CookieName == "" {
		opts.CookieName = "__Host-keyhold-device"
	}
	if opts.AllowInsecureCookies && (strings.HasPrefix(opts.CookieName, "__Host-") || strings.HasPrefix(opts.CookieName, "__Secure-")) {
		return nil, fmt.Errorf("%w: browsers drop __Host-/__Secure- cookies without Secure; choose another name with AllowInsecureCookies", ErrInvalidInput)
	}
	if opts.TTL == 0 {
		opts.TTL = 90 * 24 * time.Hour
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("%w: negative device TTL", ErrInvalidInput)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Devices{opts: opts}
	copy(d.key[:], key)
	return d, nil
}

// Remember sets the device cookie for account on w: call it after a
// successful login. It replaces a cookie for another account (one device
// cookie per browser).
func (d *Devices) Remember(w http.ResponseWriter, account string) error {
	if d == nil {
		return errNilDevices
	}
	if err := checkKey(account); err != nil {
		return err
	}
	raw := make([]byte, 0, deviceRawLen)
	raw = append(raw, deviceVersion)
	raw = binary.BigEndian.AppendUint64(raw, uint64(d.opts.Now().Add(d.opts.TTL).Unix()))
	var id [deviceIDLen]byte
	rand.Read(id[:])
	raw = append(raw, id[:]...)
	raw = d.tag(raw, account)
	http.SetCookie(w, &http.Cookie{
		Name:     d.opts.CookieName,
		Value:    base64.RawURLEncoding.EncodeToString(raw),
		Path:     "/",
		MaxAge:   int(d.opts.TTL / time.Second),
		Secure:   !d.opts.AllowInsecureCookies,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// RememberLogin is Remember for a successful login's request r: it sets
// the device cookie for account on w and reports whether r carried no
// valid device cookie of account (a login from a new device: a browser
// that never logged in to the account, or whose cookie expired or was
// cleared). For a new device it tells DeviceOptions.Notifier once, with
// keyhold.NewDeviceLogin, account as the Event's UserID and ip (the
// client's address as [ClientResolver.Client] resolved it; the zero Addr
// if unknown). Call it once per login, after the credential (and any
// second factor) was proved, not on step-up or unlock.
func (d *Devices) RememberLogin(w http.ResponseWriter, r *http.Request, account string, ip netip.Addr) (newDevice bool, err error) {
	if d == nil {
		return false, errNilDevices
	}
	if r == nil {
		return false, fmt.Errorf("%w: nil request", ErrInvalidInput)
	}
	if err := checkKey(account); err != nil {
		return false, err
	}
	newDevice = !d.Recognize(r, account).Known()
	if err := d.Remember(w, account); err != nil {
		return false, err
	}
	if newDevice {
		notify.Send(r.Context(), d.opts.Notifier, keyhold.Event{Kind: keyhold.NewDeviceLogin, UserID: account, Time: d.opts.Now(), IP: ip})
	}
	return newDevice, nil
}

// Recognize returns the device r's cookie proves for account, or the zero
// Device if there is no cookie, or it is malformed, expired, for another
// account or not signed with this key.
func (d *Devices) Recognize(r *http.Request, account string) Device {
	if d == nil {
		return Device{}
	}
	if checkKey(account) != nil {
		return Device{}
	}
	// A browser sends one such cookie; a few more may come from
	// subdomains. Checking each costs an HMAC, so only the first
	// maxDeviceCookies count.
	for i, c := range r.CookiesNamed(d.opts.CookieName) {
		if i == maxDeviceCookies {
			break
		}
		if dev, ok := d.parse(c.Value, account); ok {
			return dev
		}
	}
	return Device{}
}

func (d *Devices) parse(value, account string) (Device, bool) {
	if len(value) != deviceCookieLen {
		return Device{}, false
	}
	var raw [deviceRawLen]byte
	if n, err := base64.RawURLEncoding.Decode(raw[:], []byte(value)); err != nil || n != deviceRawLen || raw[0] != deviceVersion {
		return Device{}, false
	}
	body := raw[:deviceRawLen-deviceTagLen]
	want := d.tag(append(make([]byte, 0, deviceRawLen), body...), account)
	if !hmac.Equal(want[len(body):], raw[len(body):]) {
		return Device{}, false
	}
	expires := int64(binary.BigEndian.Uint64(raw[1:9]))
	if expires <= d.opts.Now().Unix() {
		return Device{}, false
	}
	var dev Device
	copy(dev.id[:], raw[9:9+deviceIDLen])
	dev.ok = true
	return dev, true
}

// tag appends HMAC-SHA256(key, label ‖ u32 len(account) ‖ account ‖ body)
// to body, which is version ‖ expires ‖ id.
func (d *Devices) tag(body []byte, account string) []byte {
	m := hmac.New(sha256.New, d.key[:])
	m.Write([]byte(deviceMACLabel))
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(account))))
	m.Write([]byte(account))
	m.Write(body)
	return m.Sum(body)
}
