package ratelimit

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
)

// The vectors of FORMAT.md §5, computed with Python's hashlib and hmac.
var storeKeyVectors = []struct{ kind, name, key, want string }{
	{kindRate, "login", "192.0.2.1", "170623ef86b58498ecedfbce9400e1f45150b93c3018d9647535f10eedb848be"},
	{kindRate, "login", "2001:db8:1:2::/64", "5d1a7d5a9cf922e943845c2f44e15a0a6d020edd71f8e586862669d33d426e63"},
	{kindLockout, "account", "a\x00ada", "1743d0a665b408b820ea8914fb9018fcedd2ffdfbd6cfa0f8476fa0b20cd4c20"},
	{kindLockout, "account", "d\x00" + string(vectorDeviceID()) + "ada", "83e2b6c365b58b499d1347e689f0e64ec8257abbb48be75f2f8add56fe0d1793"},
}

const vectorCookie = "AQAAAABpVbkAoKGio6SlpqeoqaqrrK2ur8LcHXTMON-T76_wmbF7g3hddNh3BwoU8RmlCXuJj3yg"

func vectorDeviceID() []byte {
	id := make([]byte, deviceIDLen)
	for i := range id {
		id[i] = 0xa0 + byte(i)
	}
	return id
}

func vectorDeviceKey() []byte {
	k := make([]byte, DeviceKeyLen)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func TestStoreKeyVectors(t *testing.T) {
	for _, v := range storeKeyVectors {
		got := storeKey(v.kind, v.name, v.key)
		if hex.EncodeToString(got[:]) != v.want {
			t.Errorf("storeKey(%q, %q, %q) = %x, want %s", v.kind, v.name, v.key, got, v.want)
		}
	}
	// The lockout's keys are built as the vectors say.
	l, err := NewLockout(nopLockoutStore{}, LockoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1, 0)
	shared := l.counters("ada", Source{}, now)[1].key
	var dev Device
	copy(dev.id[:], vectorDeviceID())
	dev.ok = true
	own := l.counters("ada", Source{Device: dev}, now)[0].key
	if hex.EncodeToString(shared[:]) != storeKeyVectors[2].want || hex.EncodeToString(own[:]) != storeKeyVectors[3].want {
		t.Errorf("lockout keys %x, %x do not match the vectors", shared, own)
	}
}

func TestDeviceCookieVector(t *testing.T) {
	expires := time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z
	d, err := NewDevices(vectorDeviceKey(), DeviceOptions{TTL: time.Hour, Now: func() time.Time { return expires.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte{deviceVersion}
	raw = binary.BigEndian.AppendUint64(raw, uint64(expires.Unix()))
	raw = append(raw, vectorDeviceID()...)
	if got := base64.RawURLEncoding.EncodeToString(d.tag(raw, "ada")); got != vectorCookie {
		t.Errorf("cookie = %s, want %s", got, vectorCookie)
	}
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.AddCookie(&http.Cookie{Name: "__Host-keyhold-device", Value: vectorCookie})
	if dev := d.Recognize(r, "ada"); !dev.Known() || string(dev.id[:]) != string(vectorDeviceID()) {
		t.Errorf("the vector cookie is not recognised for ada")
	}
	if d.Recognize(r, "adb").Known() {
		t.Errorf("the vector cookie is recognised for another account")
	}
}

// TestVectorsWithPython recomputes the vectors with Python's hashlib and
// hmac, live.
func TestVectorsWithPython(t *testing.T) {
	py := testenv.Python(t, "python3")
	script := `
import hashlib, hmac, struct, base64, sys
def sk(kind, name, key):
    b = b"keyhold/v1/ratelimit\x00" + kind + b"\x00" + name + b"\x00" + struct.pack(">I", len(key)) + key
    return hashlib.sha256(b).hexdigest()
dev = bytes(range(0xa0, 0xb0))
print(sk(b"rate", b"login", b"192.0.2.1"))
print(sk(b"rate", b"login", b"2001:db8:1:2::/64"))
print(sk(b"lockout", b"account", b"a\x00ada"))
print(sk(b"lockout", b"account", b"d\x00" + dev + b"ada"))
body = b"\x01" + struct.pack(">Q", 1767225600) + dev
tag = hmac.new(bytes(range(32)), b"keyhold/v1/ratelimit/device\x00" + struct.pack(">I", 3) + b"ada" + body, hashlib.sha256).digest()
print(base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode())
`
	out, err := exec.Command(py, "-c", script).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	lines := strings.Fields(string(out))
	want := []string{storeKeyVectors[0].want, storeKeyVectors[1].want, storeKeyVectors[2].want, storeKeyVectors[3].want, vectorCookie}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("python computes\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// nopLockoutStore is a LockoutStore that is never called.
type nopLockoutStore struct{}

func (nopLockoutStore) BeginAttempt(context.Context, []byte, storage.LockoutRequest) (bool, storage.LockoutState, error) {
	panic("not called")
}

func (nopLockoutStore) ResetLockout(context.Context, []byte) error { panic("not called") }

func (nopLockoutStore) RefundAttempt(context.Context, []byte, storage.LockoutRequest, int) (bool, storage.LockoutState, error) {
	panic("not called")
}
