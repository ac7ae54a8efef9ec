package kdf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

type deriveVector struct {
	Algorithm  Algorithm `json:"algorithm"`
	Passphrase string    `json:"passphrase"`
	SaltHex    string    `json:"salt_hex"`
	Iterations uint32    `json:"iterations"`
	T          uint32    `json:"t"`
	MKiB       uint32    `json:"m_kib"`
	P          uint8     `json:"p"`
	KeyLen     int       `json:"key_len"`
	KeyHex     string    `json:"key_hex"`
}

func (v deriveVector) params() Params {
	return Params{Algorithm: v.Algorithm, Iterations: v.Iterations, Time: v.T, MemoryKiB: v.MKiB, Threads: v.P, KeyLen: v.KeyLen}
}

func loadDeriveVectors(t *testing.T) []deriveVector {
	data, err := os.ReadFile("testdata/derive_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []deriveVector }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no derive vectors")
	}
	return f.Vectors
}

// The FORMAT.md key-derivation vectors, made with Python's hashlib and
// argon2-cffi, match DeriveKey.
func TestDeriveKeyVectors(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, Config{})
	for _, v := range loadDeriveVectors(t) {
		salt, _ := hex.DecodeString(v.SaltHex)
		key, err := h.DeriveKey(bg, []byte(v.Passphrase), salt, v.params())
		if err != nil {
			t.Fatalf("%s: %v", v.Algorithm, err)
		}
		if got := hex.EncodeToString(key); got != v.KeyHex {
			t.Errorf("%s: key %s, want %s", v.Algorithm, got, v.KeyHex)
		}
	}
}

// A browser can derive the same PBKDF2 key with WebCrypto: Node's
// crypto.subtle recomputes DeriveKey for a random passphrase and salt.
func TestDeriveKeyWebCrypto(t *testing.T) {
	t.Parallel()
	node := testenv.LookPath(t, "node", "apt-get install nodejs")
	h := newTestHasher(t, Config{})
	pass := "pässphrase " + hex.EncodeToString(randomBytes(t, 6))
	salt := randomBytes(t, 16)
	for _, alg := range []Algorithm{PBKDF2SHA256, PBKDF2SHA512} {
		p := Params{Algorithm: alg, Iterations: 10_000, KeyLen: 32}
		key, err := h.DeriveKey(bg, []byte(pass), salt, p)
		if err != nil {
			t.Fatal(err)
		}
		script := `
const [pass, saltHex, hash] = process.argv.slice(1);
const label = new TextEncoder().encode("keyhold/v1/kdf/key\0");
const salt = Buffer.concat([Buffer.from(label), Buffer.from(saltHex, "hex")]);
const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(pass.normalize("NFKC")), "PBKDF2", false, ["deriveBits"]);
const bits = await crypto.subtle.deriveBits({name: "PBKDF2", hash, salt, iterations: 10000}, base, 256);
console.log(Buffer.from(bits).toString("hex"));`
		hash := map[Algorithm]string{PBKDF2SHA256: "SHA-256", PBKDF2SHA512: "SHA-512"}[alg]
		ctx, cancel := context.WithTimeout(bg, time.Minute)
		out, err := exec.CommandContext(ctx, node, "--input-type=module", "-e", script, pass, hex.EncodeToString(salt), hash).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != hex.EncodeToString(key) {
			t.Errorf("%s: WebCrypto derived %s, DeriveKey %x", alg, got, key)
		}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
