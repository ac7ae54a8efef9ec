package vault

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/recoverycode"
	"github.com/keyhold/keyhold/internal/testenv"
)

// fingerprintKey returns the master key of FORMAT.md §3.7's vectors:
// 00 01 … 1f.
func fingerprintKey() []byte {
	mk := make([]byte, masterKeyLen)
	for i := range mk {
		mk[i] = byte(i)
	}
	return mk
}

// fingerprintVector is one row of FORMAT.md §3.7's table.
type fingerprintVector struct {
	version uint32
	f       string // hex
	text    string
}

// documentedFingerprints reads FORMAT.md §3.7's table, up to the next
// heading.
func documentedFingerprints(t *testing.T) []fingerprintVector {
	t.Helper()
	doc, err := os.ReadFile("../FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "### 3.7 Key fingerprint")
	if !ok {
		t.Fatal("FORMAT.md has no §3.7")
	}
	if i := strings.Index(sec, "\n#"); i >= 0 {
		sec = sec[:i]
	}
	var out []fingerprintVector
	for _, m := range regexp.MustCompile("(?m)^\\| ([0-9]+) \\| `([0-9a-f]+)` \\| `([0-9A-Z-]+)` \\|$").FindAllStringSubmatch(sec, -1) {
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			t.Fatalf("FORMAT.md §3.7: key version %q: %v", m[1], err)
		}
		out = append(out, fingerprintVector{uint32(v), m[2], m[3]})
	}
	if len(out) != 2 {
		t.Fatalf("FORMAT.md §3.7 lists %d vectors, want 2 (key versions 1 and 2)", len(out))
	}
	return out
}

// The code computes FORMAT.md §3.7's vectors, through Unlocked.Fingerprint
// and through the raw derivation.
func TestFingerprintFormatVectors(t *testing.T) {
	for _, vec := range documentedFingerprints(t) {
		u := newUnlocked("ada", vec.version, fingerprintKey(), nil)
		got, err := u.Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		if got != vec.text {
			t.Errorf("key version %d: Fingerprint = %s, FORMAT.md says %s", vec.version, got, vec.text)
		}
		raw, _ := hex.DecodeString(vec.f)
		if enc := recoverycode.Format(raw); enc != vec.text {
			t.Errorf("key version %d: FORMAT.md's F %s encodes to %s, its fingerprint column says %s", vec.version, vec.f, enc, vec.text)
		}
	}
}

// pythonFingerprint is FORMAT.md §3.7 written from the text alone:
// HKDF-SHA256 by RFC 5869 with hmac and hashlib, and Crockford's base32.
// It reads lines "key-hex user-hex version" and prints "F-hex fingerprint".
const pythonFingerprint = `
import hmac, hashlib, struct, sys
def hkdf(ikm, salt, info, length):
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        okm += t
        i += 1
    return okm[:length]
alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
for line in sys.stdin:
    key, user, version = line.split()
    key, user = bytes.fromhex(key), bytes.fromhex(user)
    info = b"keyhold/v1/vault/fingerprint\x00" + struct.pack(">H", len(user)) + user + struct.pack(">I", int(version))
    f = hkdf(key, b"", info, 10)
    n = int.from_bytes(f, "big")
    chars = "".join(alphabet[(n >> (75 - 5 * i)) & 31] for i in range(16))
    print(f.hex(), "-".join(chars[i:i + 4] for i in range(0, 16, 4)))
`

// Python recomputes FORMAT.md's vectors and further cases (a 255-byte user
// ID, the largest key version, another key) independently of the Go code.
func TestFingerprintWithPython(t *testing.T) {
	py := testenv.Python(t, "")
	type input struct {
		key     []byte
		user    string
		version uint32
	}
	other := make([]byte, masterKeyLen)
	for i := range other {
		other[i] = byte(0xff - 7*i)
	}
	doc := documentedFingerprints(t)
	inputs := []input{
		{fingerprintKey(), "ada", doc[0].version},
		{fingerprintKey(), "ada", doc[1].version},
		{fingerprintKey(), strings.Repeat("u", 255), 7},
		{other, "user-42", 0xffffffff},
		{other, "\x00ada", 1},
	}
	var stdin strings.Builder
	for _, in := range inputs {
		fmt.Fprintf(&stdin, "%x %x %d\n", in.key, in.user, in.version)
	}
	cmd := exec.Command(py, "-c", pythonFingerprint)
	cmd.Stdin = strings.NewReader(stdin.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("python printed %d lines, want %d: %q", len(lines), len(inputs), out)
	}
	for i, in := range inputs {
		pyF, pyText, _ := strings.Cut(lines[i], " ")
		got, err := newUnlocked(in.user, in.version, append([]byte(nil), in.key...), nil).Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		if got != pyText {
			t.Errorf("case %d (user of %d bytes, version %d): Go %s, Python %s", i, len(in.user), in.version, got, pyText)
		}
		if i < len(doc) && (pyF != doc[i].f || pyText != doc[i].text) {
			t.Errorf("key version %d: Python computes %s %s, FORMAT.md says %s %s", in.version, pyF, pyText, doc[i].f, doc[i].text)
		}
	}
}

var fingerprintShape = regexp.MustCompile("^[" + recoverycode.Alphabet() + "]{4}(-[" + recoverycode.Alphabet() + "]{4}){3}$")

// A fingerprint is 16 characters in four groups, the same for the same
// inputs, and different when the user, the key version or the key differ.
func TestFingerprintDeterministicAndDistinct(t *testing.T) {
	fp := func(key []byte, user string, version uint32) string {
		t.Helper()
		got, err := newUnlocked(user, version, append([]byte(nil), key...), nil).Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		if !fingerprintShape.MatchString(got) {
			t.Fatalf("fingerprint %q is not four groups of four base32 characters", got)
		}
		return got
	}
	key := fingerprintKey()
	other := fingerprintKey()
	other[31] ^= 1
	base := fp(key, "ada", 1)
	if again := fp(key, "ada", 1); again != base {
		t.Fatalf("same inputs, two fingerprints: %s, %s", base, again)
	}
	// Retired keys play no part: only the current key and version count.
	withRetired, err := newUnlocked("ada", 2, append([]byte(nil), key...), map[uint32][]byte{1: append([]byte(nil), other...)}).Fingerprint()
	if err != nil || withRetired != fp(key, "ada", 2) {
		t.Fatalf("with a retired key: %s, %v; without: %s", withRetired, err, fp(key, "ada", 2))
	}
	seen := map[string]string{base: "base"}
	for name, got := range map[string]string{
		"other user":        fp(key, "adb", 1),
		"user ID prefix":    fp(key, "ad", 1),
		"other key version": fp(key, "ada", 2),
		"other key":         fp(other, "ada", 1),
	} {
		if prev, dup := seen[got]; dup {
			t.Errorf("%s has the fingerprint of %s: %s", name, prev, got)
		}
		seen[got] = name
	}
}

// Two devices that unlock the same vault agree; a vault substituted in the
// store (same user, same passphrase, another master key) differs; a
// rotation changes the fingerprint, and every device that unlocks after it
// shows the new one.
func TestFingerprintDevicesSubstitutionRotation(t *testing.T) {
	v1, store := newTestVault(t)
	u1 := mustCreate(t, v1, "ada", "ada's long passphrase")
	fp1, err := u1.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}

	v2, err := New(store, Config{Hasher: testHasher})
	if err != nil {
		t.Fatal(err)
	}
	u2, err := v2.Unlock(bg, "ada", []byte("ada's long passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if fp2, err := u2.Fingerprint(); err != nil || fp2 != fp1 {
		t.Fatalf("second device: %s, %v; first device: %s", fp2, err, fp1)
	}

	// The server substitutes a vault it made with the same passphrase.
	forged, _ := newTestVault(t)
	fu := mustCreate(t, forged, "ada", "ada's long passphrase")
	fu.Lock()
	forgedRec, err := forged.store.GetVault(bg, "ada")
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := store.GetVault(bg, "ada")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutVault(bg, "ada", forgedRec.Data, genuine.Version); err != nil {
		t.Fatal(err)
	}
	u3, err := v2.Unlock(bg, "ada", []byte("ada's long passphrase"))
	if err != nil {
		t.Fatalf("the substituted vault does not unlock: %v", err)
	}
	if u3.KeyVersion() != u1.KeyVersion() {
		t.Fatalf("substituted key version %d, genuine %d: the test wants them equal", u3.KeyVersion(), u1.KeyVersion())
	}
	if fp3, _ := u3.Fingerprint(); fp3 == fp1 {
		t.Fatalf("a substituted vault shows the genuine fingerprint %s", fp1)
	}
	if err := store.PutVault(bg, "ada", genuine.Data, genuine.Version+1); err != nil {
		t.Fatal(err)
	}

	rotated, _, err := v1.RotateMasterKey(bg, "ada", []byte("ada's long passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.KeyVersion() == u1.KeyVersion() {
		t.Fatal("the rotation kept the key version")
	}
	fpR, err := rotated.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if fpR == fp1 {
		t.Fatalf("the fingerprint %s survived a rotation", fp1)
	}
	rotated.mu.RLock()
	want, err := fingerprint(rotated.mk, "ada", rotated.KeyVersion())
	rotated.mu.RUnlock()
	if err != nil || fpR != want {
		t.Fatalf("after the rotation: Fingerprint %s, the current key's %s (%v)", fpR, want, err)
	}
	u4, err := v2.Unlock(bg, "ada", []byte("ada's long passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if fp4, _ := u4.Fingerprint(); fp4 != fpR {
		t.Fatalf("after the rotation, second device %s, first %s", fp4, fpR)
	}
	if len(u4.RetiredVersions()) == 0 {
		t.Fatal("no retired version after a rotation: the fingerprint must come from the current key")
	}
}

// A locked Unlocked has no fingerprint (ErrLocked), nor has a nil one
// (ErrInvalidInput); the redacted descriptions do not show it.
func TestFingerprintLockedNilAndRedaction(t *testing.T) {
	u := newUnlocked("ada", 1, fingerprintKey(), nil)
	fp, err := u.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.ReplaceAll(fp, "-", "")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		s := fmt.Sprintf(verb, u)
		if s != u.String() || strings.Contains(s, fp) || strings.Contains(strings.ToUpper(s), plain) || strings.Contains(s, "ada") {
			t.Errorf("%s of an Unlocked prints %q", verb, s)
		}
	}
	u.Lock()
	if got, err := u.Fingerprint(); !errors.Is(err, ErrLocked) || got != "" {
		t.Fatalf("locked: Fingerprint = %q, %v; want ErrLocked", got, err)
	}
	var nilU *Unlocked
	if got, err := nilU.Fingerprint(); !errors.Is(err, ErrInvalidInput) || got != "" {
		t.Fatalf("nil: Fingerprint = %q, %v; want ErrInvalidInput", got, err)
	}
}
