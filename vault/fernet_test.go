package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/internal/vectors"
)

// The fernet/spec vectors (SOURCE.md), pinned by sha256.
const (
	fernetGenerateSHA = "b4b18aec84cb721e72229c147c169eb8f76e47827a58914b7b3ffae644889844"
	fernetVerifySHA   = "489184ab9c6965e15aca47993ec5b156f488e70ca780c5634239d5498ec5cf65"
	fernetInvalidSHA  = "90909d69cfdc0703c688242652c8edf02830e81ec40adb91875c44109f689fa6"
)

type fernetVector struct {
	Desc   string `json:"desc"`
	Token  string `json:"token"`
	Now    string `json:"now"`
	IVInts []int  `json:"iv"`
	Src    string `json:"src"`
	TTLSec int    `json:"ttl_sec"`
	Secret string `json:"secret"`
}

func (v *fernetVector) key(t *testing.T) *fernet.Key {
	t.Helper()
	k, err := fernet.DecodeKey(v.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (v *fernetVector) now(t *testing.T) time.Time {
	t.Helper()
	now, err := time.Parse(time.RFC3339, v.Now)
	if err != nil {
		t.Fatal(err)
	}
	return now
}

func loadFernetVectors(t *testing.T, name, sha string, want int) []fernetVector {
	t.Helper()
	var vs []fernetVector
	vectors.Load(t, "testdata/vectors/"+name, sha, &vs)
	if len(vs) != want {
		t.Fatalf("%s: %d vectors, want %d", name, len(vs), want)
	}
	return vs
}

// SES-22: generate.json reproduces byte for byte (fixed IV and time).
func TestFernetSpecGenerate(t *testing.T) {
	t.Parallel()
	for _, v := range loadFernetVectors(t, "fernet_generate.json", fernetGenerateSHA, 1) {
		iv := make([]byte, len(v.IVInts))
		for i, x := range v.IVInts {
			iv[i] = byte(x)
		}
		got := sealFernetAt(v.key(t), iv, v.now(t), []byte(v.Src))
		if string(got) != v.Token {
			t.Fatalf("token\n got %s\nwant %s", got, v.Token)
		}
		// fernet-go, the reference the verify path relies on, agrees.
		if msg := fernet.VerifyAndDecrypt(got, 0, []*fernet.Key{v.key(t)}); string(msg) != v.Src {
			t.Fatalf("fernet-go opened %q", msg)
		}
	}
}

// SES-22: verify.json verifies at its "now" and TTL.
func TestFernetSpecVerify(t *testing.T) {
	t.Parallel()
	for _, v := range loadFernetVectors(t, "fernet_verify.json", fernetVerifySHA, 1) {
		pt, err := openFernetAt(v.key(t), []byte(v.Token), time.Duration(v.TTLSec)*time.Second, v.now(t))
		if err != nil || string(pt) != v.Src {
			t.Fatalf("open = %q, %v", pt, err)
		}
		// One second past the TTL it is refused.
		late := v.now(t).Add(time.Duration(v.TTLSec) * time.Second)
		if _, err := openFernetAt(v.key(t), []byte(v.Token), time.Duration(v.TTLSec)*time.Second, late); err != ErrDecrypt {
			t.Fatalf("past the TTL: %v", err)
		}
	}
}

// SES-22, A26: all 8 invalid.json cases are refused with the one error.
func TestFernetSpecInvalid(t *testing.T) {
	t.Parallel()
	vs := loadFernetVectors(t, "fernet_invalid.json", fernetInvalidSHA, 8)
	for _, v := range vs {
		t.Run(v.Desc, func(t *testing.T) {
			if v.TTLSec <= 0 {
				t.Fatalf("ttl_sec %d", v.TTLSec)
			}
			pt, err := openFernetAt(v.key(t), []byte(v.Token), time.Duration(v.TTLSec)*time.Second, v.now(t))
			if err != ErrDecrypt || pt != nil {
				t.Fatalf("open = %q, %v; want ErrDecrypt", pt, err)
			}
		})
	}
}

// craftFernet MACs an arbitrary (already padded or not) ciphertext body,
// so the tests can reach the checks after the MAC.
func craftFernet(k *fernet.Key, version byte, ts uint64, body []byte) []byte {
	iv := make([]byte, aes.BlockSize)
	b := append([]byte{version}, binary.BigEndian.AppendUint64(nil, ts)...)
	b = append(b, iv...)
	ct := append([]byte(nil), body...)
	if len(ct)%aes.BlockSize == 0 {
		block, _ := aes.NewCipher(k[16:])
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	}
	b = append(b, ct...)
	m := hmac.New(sha256.New, k[:16])
	m.Write(b)
	return []byte(base64.URLEncoding.EncodeToString(m.Sum(b)))
}

// Checks beyond the spec vectors: strict base64url, the version byte,
// lengths, PKCS #7 padding fernet-go would accept, and the time window.
func TestFernetStrictness(t *testing.T) {
	t.Parallel()
	var k fernet.Key
	for i := range k {
		k[i] = byte(i)
	}
	now := time.Unix(1_700_000_000, 0)
	ts := uint64(now.Unix())
	good := sealFernetAt(&k, make([]byte, 16), now, []byte("payload"))
	if pt, err := openFernetAt(&k, good, time.Minute, now); err != nil || string(pt) != "payload" {
		t.Fatalf("good token: %q, %v", pt, err)
	}
	block := func(last byte) []byte {
		b := bytes.Repeat([]byte{'x'}, aes.BlockSize)
		b[aes.BlockSize-1] = last
		return b
	}
	unpadded := strings.TrimRight(string(good), "=")
	// The last character before the padding carries unused low bits that
	// must be zero; set the lowest.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	nonCanonical := []byte(string(good))
	i := bytes.IndexByte(nonCanonical, '=') - 1
	nonCanonical[i] = alphabet[strings.IndexByte(alphabet, nonCanonical[i])|1]
	cases := []struct {
		name  string
		token []byte
		ttl   time.Duration
	}{
		{"empty", nil, time.Minute},
		{"trailing newline", append(append([]byte(nil), good...), '\n'), time.Minute},
		{"embedded CRLF", []byte(string(good[:20]) + "\r\n" + string(good[20:])), time.Minute},
		{"unpadded", []byte(unpadded), time.Minute},
		{"standard alphabet", []byte(strings.NewReplacer("-", "+", "_", "/").Replace(string(good))), time.Minute},
		{"non-canonical trailing bits", nonCanonical, time.Minute},
		{"trailing garbage", append(append([]byte(nil), good...), "%%%%"...), time.Minute},
		{"version 0x81", craftFernet(&k, 0x81, ts, block(1)), time.Minute},
		{"no ciphertext", craftFernet(&k, 0x80, ts, nil), time.Minute},
		{"pad byte 0", craftFernet(&k, 0x80, ts, block(0)), time.Minute},
		{"pad byte 17", craftFernet(&k, 0x80, ts, bytes.Repeat([]byte{17}, 32)), time.Minute},
		{"61 s in the future, no TTL", craftFernet(&k, 0x80, ts+61, block(1)), FernetNoTTL},
		{"timestamp 2^64-1", craftFernet(&k, 0x80, math.MaxUint64, block(1)), FernetNoTTL},
		{"one second past the TTL", craftFernet(&k, 0x80, ts-61, block(1)), time.Minute},
		{"too long", make([]byte, fernetMaxTokenLen+4), FernetNoTTL},
	}
	for _, c := range cases {
		if pt, err := openFernetAt(&k, c.token, c.ttl, now); err != ErrDecrypt || pt != nil {
			t.Errorf("%s: open = %q, %v; want ErrDecrypt", c.name, pt, err)
		}
	}
	// Edges that must pass: 60 s ahead, exactly the TTL old, any age
	// without a TTL, and a full padding block.
	for name, tok := range map[string][]byte{
		"60 s in the future": craftFernet(&k, 0x80, ts+60, block(1)),
		"full pad block":     craftFernet(&k, 0x80, ts, bytes.Repeat([]byte{16}, 16)),
	} {
		if _, err := openFernetAt(&k, tok, time.Minute, now); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := openFernetAt(&k, craftFernet(&k, 0x80, ts-60, block(1)), time.Minute, now); err != nil {
		t.Errorf("exactly ttl old: %v", err)
	}
	if _, err := openFernetAt(&k, craftFernet(&k, 0x80, 0, block(1)), FernetNoTTL, now); err != nil {
		t.Errorf("timestamp 0 without TTL: %v", err)
	}
}

func TestFernetSealOpen(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	alice := mustCreate(t, v, "alice", "alice's long passphrase")
	bob := mustCreate(t, v, "bob", "bob's long passphrase")

	for _, msg := range [][]byte{{}, []byte("hello"), bytes.Repeat([]byte{0xff}, 16), bytes.Repeat([]byte("z"), 1000)} {
		tok, err := alice.SealFernet(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(tok, []byte("gAAAAA")) {
			t.Fatalf("token %q does not start with version 0x80 and a 2020s timestamp", tok)
		}
		pt, err := alice.OpenFernet(tok, time.Minute)
		if err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("open = %q, %v", pt, err)
		}
		if _, err := bob.OpenFernet(tok, time.Minute); err != ErrDecrypt {
			t.Fatalf("another user's key opened it: %v", err)
		}
	}
	tok, _ := alice.SealFernet([]byte("x"))
	for _, ttl := range []time.Duration{0, -2, math.MinInt64} {
		if _, err := alice.OpenFernet(tok, ttl); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ttl %v: %v", ttl, err)
		}
	}
	if _, err := alice.OpenFernet(tok, FernetNoTTL); err != nil {
		t.Errorf("FernetNoTTL: %v", err)
	}
	if _, err := alice.SealFernet(make([]byte, MaxPlaintextLen+1)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("oversized plaintext: %v", err)
	}

	// The key is HKDF-SHA256(master key, "", "keyhold/v1/vault/fernet-key"),
	// distinct from the record key, and what UnsafeExportFernetKey returns.
	mk, err := alice.masterKey()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hkdf.Key(sha256.New, mk, nil, "keyhold/v1/vault/fernet-key", 32)
	rk, _ := hkdf.Key(sha256.New, mk, nil, labelRecordKey, 32)
	exported, err := alice.UnsafeExportFernetKey()
	if err != nil {
		t.Fatal(err)
	}
	if exported != base64.URLEncoding.EncodeToString(want) || len(exported) != 44 {
		t.Fatalf("exported key %d chars, not the documented derivation", len(exported))
	}
	if bytes.Equal(want, rk) {
		t.Fatal("fernet key equals the record key")
	}
	// fernet-go with the exported key opens our tokens, and we open its.
	ek := fernet.MustDecodeKeys(exported)
	if msg := fernet.VerifyAndDecrypt(tok, time.Minute, ek); string(msg) != "x" {
		t.Fatalf("fernet-go opened %q", msg)
	}
	theirs, err := fernet.EncryptAndSign([]byte("from fernet-go"), ek[0])
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := alice.OpenFernet(theirs, time.Minute); err != nil || string(pt) != "from fernet-go" {
		t.Fatalf("open fernet-go token = %q, %v", pt, err)
	}

	alice.Lock()
	if _, err := alice.SealFernet([]byte("x")); err != ErrLocked {
		t.Errorf("SealFernet after Lock: %v", err)
	}
	if _, err := alice.OpenFernet(tok, time.Minute); err != ErrLocked {
		t.Errorf("OpenFernet after Lock: %v", err)
	}
	if _, err := alice.UnsafeExportFernetKey(); err != ErrLocked {
		t.Errorf("UnsafeExportFernetKey after Lock: %v", err)
	}
}

// runPython runs a script under testdata with req as JSON on stdin and
// decodes its JSON output into resp (or returns its raw output if resp is
// nil).
func runPython(t *testing.T, py, script string, req, resp any) []byte {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/"+script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.Bytes())
	}
	if resp != nil {
		if err := json.Unmarshal(out, resp); err != nil {
			t.Fatalf("%s output: %v", script, err)
		}
	}
	return out
}

// Python's cryptography.fernet.Fernet, given the exported key, opens our
// tokens, and we open the tokens it makes.
func TestFernetPythonInterop(t *testing.T) {
	t.Parallel()
	py := testenv.Python(t, "python3-cryptography", "cryptography")
	v, _ := newTestVault(t)
	u := mustCreate(t, v, "alice", "alice's long passphrase")
	key, err := u.UnsafeExportFernetKey()
	if err != nil {
		t.Fatal(err)
	}
	ours := []byte("sealed in Go \x00\xff ✓")
	tok, err := u.SealFernet(ours)
	if err != nil {
		t.Fatal(err)
	}
	theirs := []byte("sealed in Python \x00\x01 ✓")
	var resp struct {
		Opened string `json:"opened"`
		Sealed string `json:"sealed"`
	}
	runPython(t, py, "fernet_interop.py", map[string]string{
		"key":  key,
		"open": string(tok),
		"seal": base64.StdEncoding.EncodeToString(theirs),
	}, &resp)
	if got, _ := base64.StdEncoding.DecodeString(resp.Opened); !bytes.Equal(got, ours) {
		t.Fatalf("Python opened %q, want %q", got, ours)
	}
	pt, err := u.OpenFernet([]byte(resp.Sealed), time.Minute)
	if err != nil || !bytes.Equal(pt, theirs) {
		t.Fatalf("OpenFernet(Python token) = %q, %v", pt, err)
	}
}

// OpenFernet never panics, and whatever it accepts fernet-go accepts too.
func FuzzOpenFernet(f *testing.F) {
	var k fernet.Key
	for i := range k {
		k[i] = byte(i * 7)
	}
	now := time.Unix(1_700_000_000, 0)
	f.Add(sealFernetAt(&k, make([]byte, 16), now, []byte("seed")))
	f.Add([]byte("gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA=="))
	f.Add([]byte("%%%%"))
	f.Fuzz(func(t *testing.T, tok []byte) {
		pt, err := openFernetAt(&k, tok, FernetNoTTL, now)
		if err != nil {
			if err != ErrDecrypt {
				t.Fatalf("error %v", err)
			}
			return
		}
		if msg := fernet.VerifyAndDecrypt(tok, 0, []*fernet.Key{&k}); !bytes.Equal(msg, pt) {
			t.Fatalf("fernet-go disagrees: %q vs %q", msg, pt)
		}
	})
}

// The committed fixture (testdata/make_fernet_credentials.py, run with no
// input) holds these.
const (
	fixturePassphrase = "Fixture-Passphrase-ü-2024!"
	fixtureEmail      = "migrating.user@example.com"
	fixturePassword   = "correct horse battery staple 42!"
	fixtureMFA        = "JBSWY3DPEHPK3PXP"
)

func readFixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/fernet_credentials.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkImported opens each imported credential with u and compares it.
func checkImported(t *testing.T, u *Unlocked, creds []ImportedCredential, want map[string]string) {
	t.Helper()
	if len(creds) != 3 {
		t.Fatalf("%d credentials", len(creds))
	}
	for i, name := range []string{"email", "password", "mfa_secret"} {
		c := creds[i]
		if c.Name != name || string(c.Context) != FernetImportContextPrefix+name {
			t.Fatalf("credential %d: %q %q", i, c.Name, c.Context)
		}
		pt, err := u.Open(c.Sealed, []byte(FernetImportContextPrefix+name))
		if err != nil || string(pt) != want[name] {
			t.Fatalf("%s = %q, %v; want %q", name, pt, err, want[name])
		}
	}
}

func TestImportFernetCredentials(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	u, creds, err := v.ImportFernetCredentials(bg, "migrant", []byte(fixturePassphrase), bytes.NewReader(readFixture(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"email": fixtureEmail, "password": fixturePassword, "mfa_secret": fixtureMFA}
	checkImported(t, u, creds, want)

	// The new vault unlocks with the same passphrase and opens them.
	u2, err := v.Unlock(bg, "migrant", []byte(fixturePassphrase))
	if err != nil {
		t.Fatal(err)
	}
	checkImported(t, u2, creds, want)

	// A second import for the user finds the vault.
	if _, _, err := v.ImportFernetCredentials(bg, "migrant", []byte(fixturePassphrase), bytes.NewReader(readFixture(t))); !errors.Is(err, ErrExists) {
		t.Fatalf("second import: %v", err)
	}
}

func TestImportFernetCredentialsWrongPassphrase(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	for _, pass := range []string{"Fixture-Passphrase-u-2024!", "", fixturePassphrase + " "} {
		_, creds, err := v.ImportFernetCredentials(bg, "migrant", []byte(pass), bytes.NewReader(readFixture(t)))
		if err != ErrUnlockFailed || creds != nil {
			t.Fatalf("passphrase %q: %v", pass, err)
		}
	}
	if _, err := v.Unlock(bg, "migrant", []byte(fixturePassphrase)); !errors.Is(err, ErrNoVault) {
		t.Fatalf("a failed import left a vault: %v", err)
	}
}

// A tampered token (any byte of any credential) fails like a wrong
// passphrase, and creates nothing.
func TestImportFernetCredentialsTampered(t *testing.T) {
	t.Parallel()
	var f map[string]any
	if err := json.Unmarshal(readFixture(t), &f); err != nil {
		t.Fatal(err)
	}
	tamper := func(field string, at func(raw []byte) int) []byte {
		tok := f[field].(string)
		raw, err := base64.URLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		raw[at(raw)] ^= 1
		g := map[string]any{}
		for k, v := range f {
			g[k] = v
		}
		g[field] = base64.URLEncoding.EncodeToString(raw)
		b, _ := json.Marshal(g)
		return b
	}
	cases := map[string][]byte{
		"email ciphertext": tamper("email", func(raw []byte) int { return 30 }),
		"password MAC":     tamper("password", func(raw []byte) int { return len(raw) - 1 }),
		"mfa timestamp":    tamper("mfa_secret", func(raw []byte) int { return 8 }),
		"mfa IV":           tamper("mfa_secret", func(raw []byte) int { return 9 }),
	}
	truncated := map[string]any{}
	for k, v := range f {
		truncated[k] = v
	}
	pw := f["password"].(string)
	truncated["password"] = pw[:len(pw)-8]
	cases["password truncated"], _ = json.Marshal(truncated)
	for name, file := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v, _ := newTestVault(t)
			if _, _, err := v.ImportFernetCredentials(bg, "migrant", []byte(fixturePassphrase), bytes.NewReader(file)); err != ErrUnlockFailed {
				t.Fatalf("import: %v", err)
			}
			if _, err := v.Unlock(bg, "migrant", []byte(fixturePassphrase)); !errors.Is(err, ErrNoVault) {
				t.Fatalf("a failed import left a vault: %v", err)
			}
		})
	}
}

// Malformed files are ErrInvalidInput, refused before the key derivation;
// no error quotes the file or the passphrase.
func TestImportFernetCredentialsMalformed(t *testing.T) {
	t.Parallel()
	v, _ := newTestVault(t)
	fixture := readFixture(t)
	edit := func(mut func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(fixture, &m); err != nil {
			t.Fatal(err)
		}
		mut(m)
		b, _ := json.Marshal(m)
		return b
	}
	cases := map[string][]byte{
		"empty":           {},
		"not JSON":        []byte("gAAAAAB-secret-ish"),
		"array":           []byte("[1,2]"),
		"null":            []byte("null"),
		"not encrypted":   edit(func(m map[string]any) { m["encrypted"] = false }),
		"encrypted text":  edit(func(m map[string]any) { m["encrypted"] = "true" }),
		"no version":      edit(func(m map[string]any) { delete(m, "version") }),
		"version 2.0":     edit(func(m map[string]any) { m["version"] = "2.0" }),
		"no salt":         edit(func(m map[string]any) { delete(m, "salt") }),
		"salt 15 bytes":   edit(func(m map[string]any) { m["salt"] = base64.StdEncoding.EncodeToString(make([]byte, 15)) }),
		"salt 32 bytes":   edit(func(m map[string]any) { m["salt"] = base64.StdEncoding.EncodeToString(make([]byte, 32)) }),
		"salt not base64": edit(func(m map[string]any) { m["salt"] = "****************" }),
		"no email":        edit(func(m map[string]any) { delete(m, "email") }),
		"password number": edit(func(m map[string]any) { m["password"] = 42 }),
		"all empty":       edit(func(m map[string]any) { m["email"], m["password"], m["mfa_secret"] = "", "", "" }),
		"oversized":       edit(func(m map[string]any) { m["padding"] = strings.Repeat("x", MaxFernetCredentialsLen) }),
	}
	for name, file := range cases {
		_, creds, err := v.ImportFernetCredentials(bg, "migrant", []byte(fixturePassphrase), bytes.NewReader(file))
		if !errors.Is(err, ErrInvalidInput) || creds != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "vault: ") || strings.Contains(msg, "gAAAA") || strings.Contains(msg, "Fixture") {
			t.Errorf("%s: error %q", name, msg)
		}
	}
	if _, _, err := v.ImportFernetCredentials(bg, "migrant", []byte(fixturePassphrase), nil); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("nil reader: %v", err)
	}
	if _, _, err := v.ImportFernetCredentials(bg, "", []byte(fixturePassphrase), bytes.NewReader(fixture)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("empty user ID: %v", err)
	}
	// Unknown members are ignored (the files of automation mode have more).
	extra := edit(func(m map[string]any) { m["created_at"] = "2025-01-01T00:00:00"; m["automation_enabled"] = true })
	u, creds, err := v.ImportFernetCredentials(bg, "migrant", []byte(fixturePassphrase), bytes.NewReader(extra))
	if err != nil {
		t.Fatalf("extra members: %v", err)
	}
	checkImported(t, u, creds, map[string]string{"email": fixtureEmail, "password": fixturePassword, "mfa_secret": fixtureMFA})
}

// A file made just now by Python's cryptography, with an empty MFA secret
// and a non-ASCII passphrase and password, imports end to end.
func TestImportFernetCredentialsFromPython(t *testing.T) {
	t.Parallel()
	py := testenv.Python(t, "python3-cryptography", "cryptography")
	in := map[string]string{
		"passphrase": "Ünïcödé passphrase ✓ 12!",
		"email":      "someone@example.org",
		"password":   "pässwörd ✓",
		"mfa_secret": "",
	}
	file := runPython(t, py, "make_fernet_credentials.py", in, nil)
	if !bytes.Contains(file, []byte(`"mfa_secret": ""`)) {
		t.Fatalf("unexpected file:\n%s", file)
	}
	v, _ := newTestVault(t)
	u, creds, err := v.ImportFernetCredentials(bg, "someone", []byte(in["passphrase"]), bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	checkImported(t, u, creds, in)
}
