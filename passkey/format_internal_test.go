package passkey

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/vault"
)

// formatBytes returns from, from+1, …, n bytes.
func formatBytes(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(from + i)
	}
	return b
}

func formatHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The public keys of FORMAT.md §7.4's credentials: the P-256 base point
// (the public key of the private key 1) as an ES256 COSE_Key, and the
// Ed25519 public key of RFC 8032 §7.1's TEST 1 as an EdDSA COSE_Key.
var (
	formatES256Key = formatHex("a5010203262001215820" +
		"6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296" + "225820" +
		"4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
	formatEdDSAKey = formatHex("a4010103272006215820" +
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
)

// formatRecord is FORMAT.md §7.4's record, as decodeRecord gives it back.
func formatRecord() *record {
	return &record{
		userID: "ada",
		handle: formatBytes(0x40, storage.PasskeyHandleLen),
		creds: []credential{{
			id:        formatHex("8f3c1b7ad2e64509b1c0f7e25a9d4e3b6c2a1f0e9d8c7b6a5948372615f4e3d2"),
			publicKey: formatES256Key, alg: -7, signCount: 0,
			flags:      flagUVInitialized | flagBackupEligible | flagBackupState | flagPRF,
			transports: []string{"hybrid", "internal"}, attType: "none", attFormat: "none",
			aaguid:  formatBytes(0xa0, 16),
			created: time.UnixMilli(1767225600000).UTC(), lastUsed: time.UnixMilli(1767229200000).UTC(),
			name: "Laptop", prfSalt: formatBytes(0, 32),
		}, {
			id:        formatBytes(0xc0, 16),
			publicKey: formatEdDSAKey, alg: -8, signCount: 42,
			flags:      flagUVInitialized | flagCloneWarning,
			transports: []string{"nfc", "usb"}, attType: "self", attFormat: "packed",
			created: time.UnixMilli(1767312000000).UTC(),
			name:    "Security key",
		}},
	}
}

// formatVectors computes FORMAT.md §7.4's values, in its table's order.
func formatVectors(t *testing.T) []string {
	t.Helper()
	rec := formatRecord()
	data, err := rec.encode()
	if err != nil {
		t.Fatal(err)
	}
	slot, err := vault.SecretSlotID(rec.creds[0].id)
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		hex.EncodeToString(data),
		hex.EncodeToString(sessionChallengeID(ceremonyRegister, "ada", "r3f")),
		hex.EncodeToString(loginChallengeID(formatBytes(0, loginTokenLen))),
		base64.RawURLEncoding.EncodeToString(formatBytes(0, loginTokenLen)),
		slot,
	}
}

// documentedVectors reads the output column of FORMAT.md §7.4's table.
func documentedVectors(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "### 7.4 Vectors")
	if !ok {
		t.Fatal("FORMAT.md has no §7.4")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| .* \\| `([0-9A-Za-z_-]+)` \\|$").FindAllStringSubmatch(sec, -1) {
		out = append(out, m[1])
	}
	return out
}

// documentedBreakdown reads the field-by-field block of FORMAT.md §7.4
// (the first code block after its table) and returns its hex: on each
// line, what comes before the first two spaces, without spaces.
func documentedBreakdown(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(doc), "### 7.4 Vectors")
	m := regexp.MustCompile("(?s)\n```\n(.*?)\n```").FindStringSubmatch(sec)
	if m == nil {
		t.Fatal("FORMAT.md §7.4 has no field-by-field block")
	}
	var b strings.Builder
	for line := range strings.SplitSeq(m[1], "\n") {
		field, _, _ := strings.Cut(line, "  ")
		field = strings.ReplaceAll(field, " ", "")
		if _, err := hex.DecodeString(field); err != nil || field == "" {
			t.Errorf("FORMAT.md §7.4: line %q does not begin with hex", line)
		}
		b.WriteString(field)
	}
	return b.String()
}

// storedVector is the documented record as the store would hold it.
func storedVector(t *testing.T, data []byte) storage.PasskeyRecord {
	t.Helper()
	want := formatRecord()
	return storage.PasskeyRecord{UserID: want.userID, Handle: want.handle, Version: 1,
		CredentialIDs: [][]byte{want.creds[1].id, want.creds[0].id}, Data: data}
}

func TestFormatVectors(t *testing.T) {
	got, doc := formatVectors(t), documentedVectors(t)
	if len(doc) != len(got) {
		t.Fatalf("FORMAT.md §7.4 lists %d vectors, the code computes %d", len(doc), len(got))
	}
	for i := range got {
		if got[i] != doc[i] {
			t.Errorf("vector %d: code computes %s, FORMAT.md says %s", i, got[i], doc[i])
		}
	}

	if bd := documentedBreakdown(t); bd != got[0] {
		t.Errorf("FORMAT.md §7.4's field-by-field block makes\n%s\nthe code encodes\n%s", bd, got[0])
	}

	// The documented record decodes to the documented fields (the index
	// in another order: it is a set), and encodes back to itself.
	data, err := hex.DecodeString(doc[0])
	if err != nil {
		t.Fatal(err)
	}
	want := formatRecord()
	want.version = 1
	rec, err := decodeRecord(storedVector(t, data))
	if err != nil {
		t.Fatalf("decodeRecord(the documented record): %v", err)
	}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("the documented record decodes to\n%+v\nwant\n%+v", rec, want)
	}
	if again, err := rec.encode(); err != nil || hex.EncodeToString(again) != doc[0] {
		t.Errorf("the decoded record encodes to %x, %v", again, err)
	}
	// §7.4 names each credential's flags.
	c0, c1 := &rec.creds[0], &rec.creds[1]
	if !c0.has(flagUVInitialized) || !c0.has(flagBackupEligible) || !c0.has(flagBackupState) || !c0.has(flagPRF) || c0.has(flagCloneWarning) ||
		!c1.has(flagUVInitialized) || c1.has(flagBackupEligible) || c1.has(flagBackupState) || c1.has(flagPRF) || !c1.has(flagCloneWarning) {
		t.Errorf("flags %#02x and %#02x, not those §7.4 names", c0.flags, c1.flags)
	}

	// The documented cookie value is read back as the documented token.
	for _, m := range []*Manager{{}, {insecure: true}} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.AddCookie(&http.Cookie{Name: m.loginCookieName(), Value: doc[3]})
		token, ok := m.loginToken(httptest.NewRecorder(), r)
		if !ok || hex.EncodeToString(token) != hex.EncodeToString(formatBytes(0, loginTokenLen)) ||
			hex.EncodeToString(loginChallengeID(token)) != doc[2] {
			t.Errorf("cookie %s=%s reads as %x, %v", m.loginCookieName(), doc[3], token, ok)
		}
	}
}

// TestFormatRecordRefusals checks what §7.1 says a decoder refuses, on
// the documented record.
func TestFormatRecordRefusals(t *testing.T) {
	good, err := formatRecord().encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeRecord(storedVector(t, good)); err != nil {
		t.Fatal(err)
	}
	// Offsets in the documented record: credential 0's flags byte, and
	// where credential 1 begins.
	c0 := formatRecord().creds[0]
	flags0 := 2 + 2 + len(c0.id) + 2 + len(c0.publicKey) + 4 + 4
	one := &record{creds: formatRecord().creds[:1]}
	first, _ := one.encode()
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	cases := map[string]storage.PasskeyRecord{
		"trailing byte":    storedVector(t, append(append([]byte{}, good...), 0)),
		"truncated":        storedVector(t, good[:len(good)-1]),
		"version 2":        storedVector(t, edit(func(b []byte) []byte { b[0] = 2; return b })),
		"unknown flag":     storedVector(t, edit(func(b []byte) []byte { b[flags0] |= 1 << 5; return b })),
		"count too high":   storedVector(t, edit(func(b []byte) []byte { b[1] = storage.MaxPasskeysPerUser + 1; return b })),
		"count off by one": storedVector(t, edit(func(b []byte) []byte { b[1] = 3; return b })),
		"duplicate ID": {UserID: "ada", Handle: formatBytes(0x40, 64), CredentialIDs: [][]byte{c0.id, c0.id},
			Data: append([]byte{1, 2}, append(append([]byte{}, first[2:]...), first[2:]...)...)},
		"index lacks an ID": {UserID: "ada", Handle: formatBytes(0x40, 64), CredentialIDs: [][]byte{c0.id}, Data: good},
		"index has another ID": {UserID: "ada", Handle: formatBytes(0x40, 64),
			CredentialIDs: [][]byte{c0.id, formatBytes(0xd0, 16)}, Data: good},
		"short handle": {UserID: "ada", Handle: formatBytes(0x40, 63), CredentialIDs: [][]byte{c0.id, formatRecord().creds[1].id}, Data: good},
	}
	// 33 credentials, each well formed, with their index: over the bound.
	many := []byte{1, storage.MaxPasskeysPerUser + 1}
	var manyIDs [][]byte
	for i := range storage.MaxPasskeysPerUser + 1 {
		c := formatRecord().creds[1]
		c.id = []byte{0xe0, byte(i)}
		b, err := (&record{creds: []credential{c}}).encode()
		if err != nil {
			t.Fatal(err)
		}
		many = append(many, b[2:]...)
		manyIDs = append(manyIDs, c.id)
	}
	cases["33 credentials"] = storage.PasskeyRecord{UserID: "ada", Handle: formatBytes(0x40, 64), CredentialIDs: manyIDs, Data: many}
	for name, sr := range cases {
		if _, err := decodeRecord(sr); err != errMalformed {
			t.Errorf("%s: decodeRecord returned %v, want errMalformed", name, err)
		}
	}
}

// TestFormatVectorsWithPython parses the documented record and recomputes
// the challenge IDs and the cookie value with Python's standard library,
// from §7.1 and §7.2 alone, and compares them with the code.
func TestFormatVectorsWithPython(t *testing.T) {
	py := testenv.Python(t, "libpython3-stdlib", "hashlib", "struct", "json", "base64")
	script := `
import base64, hashlib, json, struct, sys
data = bytes.fromhex(sys.argv[1])
pos = 0
def take(n):
    global pos
    if pos + n > len(data):
        raise ValueError("runs past the end")
    out = data[pos:pos + n]
    pos += n
    return out
def num(fmt):
    return struct.unpack(">" + fmt, take(struct.calcsize(fmt)))[0]
def short():
    return take(num("B"))
assert num("B") == 1
creds = []
for _ in range(num("B")):
    c = {}
    c["id"] = take(num("H")).hex()
    c["public_key"] = take(num("H")).hex()
    c["alg"] = num("i")
    c["sign_count"] = num("I")
    c["flags"] = num("B")
    c["transports"] = [short().decode() for _ in range(num("B"))]
    c["att_type"] = short().decode()
    c["att_format"] = short().decode()
    c["aaguid"] = short().hex()
    c["created"] = num("q")
    c["last_used"] = num("q")
    c["name"] = short().decode()
    c["prf_salt"] = short().hex()
    creds.append(c)
assert pos == len(data), "trailing bytes"
label = b"keyhold/v1/passkey/challenge-id\x00"
user, ref, token = b"ada", b"r3f", bytes(range(32))
print(json.dumps({
    "creds": creds,
    "register_id": hashlib.sha256(label + b"R" + struct.pack(">H", len(user)) + user + ref).hexdigest(),
    "login_id": hashlib.sha256(label + b"L" + token).hexdigest(),
    "cookie": base64.urlsafe_b64encode(token).rstrip(b"=").decode(),
    "slot_id": hashlib.sha256(b"keyhold/v1/vault/secret-slot-id\x00" + bytes.fromhex(creds[0]["id"])).hexdigest()[:32],
}))
`
	doc := documentedVectors(t)
	if len(doc) != 5 {
		t.Fatalf("FORMAT.md §7.4 lists %d vectors, want 5", len(doc))
	}
	out, err := exec.Command(py, "-c", script, doc[0]).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	type pyCred struct {
		ID         string   `json:"id"`
		PublicKey  string   `json:"public_key"`
		Alg        int32    `json:"alg"`
		SignCount  uint32   `json:"sign_count"`
		Flags      uint8    `json:"flags"`
		Transports []string `json:"transports"`
		AttType    string   `json:"att_type"`
		AttFormat  string   `json:"att_format"`
		AAGUID     string   `json:"aaguid"`
		Created    int64    `json:"created"`
		LastUsed   int64    `json:"last_used"`
		Name       string   `json:"name"`
		PRFSalt    string   `json:"prf_salt"`
	}
	var got struct {
		Creds      []pyCred `json:"creds"`
		RegisterID string   `json:"register_id"`
		LoginID    string   `json:"login_id"`
		Cookie     string   `json:"cookie"`
		SlotID     string   `json:"slot_id"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python printed %s: %v", out, err)
	}
	var want []pyCred
	for _, c := range formatRecord().creds {
		want = append(want, pyCred{ID: hex.EncodeToString(c.id), PublicKey: hex.EncodeToString(c.publicKey), Alg: c.alg,
			SignCount: c.signCount, Flags: c.flags, Transports: c.transports, AttType: c.attType, AttFormat: c.attFormat,
			AAGUID: hex.EncodeToString(c.aaguid), Created: unixMilli(c.created), LastUsed: unixMilli(c.lastUsed),
			Name: c.name, PRFSalt: hex.EncodeToString(c.prfSalt)})
	}
	if !reflect.DeepEqual(got.Creds, want) {
		t.Errorf("python parses the documented record as\n%+v\nwant\n%+v", got.Creds, want)
	}
	v := formatVectors(t)
	py4 := []string{got.RegisterID, got.LoginID, got.Cookie, got.SlotID}
	if strings.Join(py4, " ") != strings.Join(v[1:], " ") {
		t.Errorf("python computes %v, the code %v", py4, v[1:])
	}
	if strings.Join(py4, " ") != strings.Join(doc[1:], " ") {
		t.Errorf("python computes %v, FORMAT.md says %v", py4, doc[1:])
	}
}
