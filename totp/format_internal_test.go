package totp

import (
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/recoverycode"
	"github.com/keyhold/keyhold/internal/testenv"
)

// byteRange returns from, from+1, …, n bytes.
func byteRange(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(from + i)
	}
	return b
}

// formatVectors computes FORMAT.md §6.4's values, in its table's order.
func formatVectors(t *testing.T) []string {
	t.Helper()
	ring, err := NewKeyRing("k1", map[string][]byte{"k1": byteRange(0, 32)})
	if err != nil {
		t.Fatal(err)
	}
	var id [credIDLen]byte
	copy(id[:], byteRange(0xa0, 16))
	ad := secretAD("ada", id)
	sealed := ring.sealWithNonce("ada", []byte("12345678901234567890"), ad, byteRange(0xc0, 12))
	hash := recoveryHash(byteRange(0, 16), "ada", byteRange(0, 20))
	rec := &factorRecord{
		creds: []cred{{id: id, created: 1767225600000, lastUsed: 1767225630000, lastStep: 58907521,
			alg: algSHA1, digits: 6, period: 30, name: "Phone", sealed: []byte{1, 2, 3}}},
		removals: 2, retired: []retiredID{{id: [credIDLen]byte(byteRange(0xb0, 16)), at: 1767225615000}}, generated: 1767225600000, total: 10, hashes: [][recoveryHashLen]byte{hash},
	}
	copy(rec.salt[:], byteRange(0, 16))
	return []string{hex.EncodeToString(ad), hex.EncodeToString(sealed), recoverycode.Format(byteRange(0, 20)),
		hex.EncodeToString(hash[:]), hex.EncodeToString(rec.encode())}
}

// documentedVectors reads the output column of FORMAT.md §6.4's table.
func documentedVectors(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "### 6.4 Vectors")
	if !ok {
		t.Fatal("FORMAT.md has no §6.4")
	}
	// §6.4 ends where the next section begins (§7's vectors are not ours).
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| .* \\| `([0-9A-Za-z-]+)` \\|$").FindAllStringSubmatch(sec, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestFormatVectors(t *testing.T) {
	got, doc := formatVectors(t), documentedVectors(t)
	if len(doc) != len(got) {
		t.Fatalf("FORMAT.md §6.4 lists %d vectors, the code computes %d", len(doc), len(got))
	}
	for i := range got {
		if got[i] != doc[i] {
			t.Errorf("vector %d: code computes %s, FORMAT.md says %s", i, got[i], doc[i])
		}
	}
	// The documented record decodes, and the documented sealed secret opens.
	raw, _ := hex.DecodeString(doc[4])
	rec, err := decodeRecord(raw)
	if err != nil || len(rec.creds) != 1 || rec.creds[0].name != "Phone" || len(rec.hashes) != 1 {
		t.Fatalf("the documented record decodes to %+v, %v", rec, err)
	}
	ring, _ := NewKeyRing("k1", map[string][]byte{"k1": byteRange(0, 32)})
	sealed, _ := hex.DecodeString(doc[1])
	adBytes, _ := hex.DecodeString(doc[0])
	if pt, err := ring.Open(t.Context(), "ada", sealed, adBytes); err != nil || string(pt) != "12345678901234567890" {
		t.Errorf("the documented sealed secret opens to %q, %v", pt, err)
	}
	if _, err := ring.Open(t.Context(), "adb", sealed, adBytes); err == nil {
		t.Error("the documented sealed secret opens for another user")
	}
	if secret, ok := recoverycode.Parse(strings.ToLower(strings.ReplaceAll(doc[2], "-", " "))); !ok || hex.EncodeToString(secret) != hex.EncodeToString(byteRange(0, 20)) {
		t.Error("the documented recovery code does not parse back, lower-cased with spaces")
	}
}

// TestFormatVectorsWithPython recomputes the sealed secret (AES-256-GCM,
// from Debian's python3-cryptography) and the recovery-code hash (hmac)
// independently.
func TestFormatVectorsWithPython(t *testing.T) {
	py := testenv.Python(t, "python3-cryptography", "cryptography")
	script := `
import hmac, hashlib, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
def s16(b): return struct.pack(">H", len(b)) + b
ad = s16(b"keyhold/totp/secret/v1") + s16(b"ada") + bytes(range(0xa0, 0xb0))
aad = s16(b"keyhold/totp/keyring/v1") + s16(b"ada") + s16(b"k1") + ad
nonce = bytes(range(0xc0, 0xcc))
ct = AESGCM(bytes(range(32))).encrypt(nonce, b"12345678901234567890", aad)
print(ad.hex())
print((b"\x01\x02k1" + nonce + ct).hex())
h = hmac.new(bytes(range(16)), s16(b"keyhold/totp/recovery/v1") + s16(b"ada") + bytes(range(20)), hashlib.sha256)
print(h.hexdigest())
`
	out, err := exec.Command(py, "-c", script).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	got := strings.Fields(string(out))
	v := formatVectors(t)
	want := []string{v[0], v[1], v[3]}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("python computes %v, want %v", got, want)
	}
}
