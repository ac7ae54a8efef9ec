package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/storage/memstore"
)

// The secret-slot vectors (FORMAT.md §3.2 kind 3, §3.4) are a pure
// function of the fixed inputs below: every salt and nonce is fixed, so
// TestSecretSlotVectors rebuilds vault/testdata/secret_slot_vectors.json
// byte for byte, and Python (testdata/secret_slot.py) and WebCrypto
// (testdata/webcrypto/secretslot.mjs) recompute them from FORMAT.md. Run
// with KEYHOLD_WRITE_SECRET_VECTORS=1 to write the file after a deliberate
// change of the inputs.

const secretVectorsPath = "testdata/secret_slot_vectors.json"

type secretVectorSlot struct {
	CredentialIDHex string `json:"credential_id_hex"`
	SecretHex       string `json:"secret_hex"`
	SaltHex         string `json:"salt_hex"`
	NonceHex        string `json:"nonce_hex"`
	SlotIDHex       string `json:"slot_id_hex"`
	InfoHex         string `json:"info_hex"`
	KEKHex          string `json:"kek_hex"`
	AADHex          string `json:"aad_hex"`
	WrappedHex      string `json:"wrapped_hex"`
	SlotHex         string `json:"slot_hex"`
}

type secretVectorNegative struct {
	Name            string `json:"name"`
	UserID          string `json:"user_id"`
	CredentialIDHex string `json:"credential_id_hex"`
	SecretHex       string `json:"secret_hex"`
	RecordHex       string `json:"record_hex"`
	Expect          string `json:"expect"`
}

type secretVectors struct {
	Note         string                 `json:"note"`
	UserID       string                 `json:"user_id"`
	Passphrase   string                 `json:"passphrase"`
	KeyVersion   uint32                 `json:"key_version"`
	MasterKeyHex string                 `json:"master_key_hex"`
	Slots        []secretVectorSlot     `json:"slots"`
	RecordHex    string                 `json:"record_hex"`
	Negative     []secretVectorNegative `json:"negative"`
}

// xhex decodes hex or fails t.
func xhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sealWithNonce is wrapKey with a fixed nonce, for the vectors only.
func sealWithNonce(t testing.TB, key, nonce, pt, aad []byte) []byte {
	t.Helper()
	aead, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	return aead.Seal(append([]byte(nil), nonce...), nonce, pt, aad)
}

// buildSecretVectors computes the whole vector file from its fixed inputs.
func buildSecretVectors(t testing.TB) secretVectors {
	t.Helper()
	f := secretVectors{
		Note: "FORMAT.md sections 3.2 (kind 3, secret) and 3.4. Built by vault's TestSecretSlotVectors from fixed inputs " +
			"(every salt and nonce is fixed, so the file is reproducible). record_hex is a vault at key_version holding a " +
			"PBKDF2-SHA256 passphrase slot (passphrase, 600000 iterations) and the two secret slots of slots[], all wrapping " +
			"master_key_hex. Positive: UnlockWithSecret(user_id, credential_id, secret) of each slot, and Unlock(user_id, " +
			"passphrase), give master_key_hex. Every negative must fail with unlock_failed (ErrUnlockFailed).",
		UserID:       "user-42",
		Passphrase:   "correct horse battery staple",
		KeyVersion:   1,
		MasterKeyHex: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	}
	mk := xhex(t, f.MasterKeyHex)
	inputs := []secretVectorSlot{
		{ // a passkey's credential ID (32 bytes) and its PRF output (32 bytes)
			CredentialIDHex: "8f3c1b7ad2e64509b1c0f7e25a9d4e3b6c2a1f0e9d8c7b6a5948372615f4e3d2",
			SecretHex:       "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
			SaltHex:         "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
			NonceHex:        "d0d1d2d3d4d5d6d7d8d9dadb",
		},
		{ // another credential of the same user (16-byte ID)
			CredentialIDHex: "00112233445566778899aabbccddeeff",
			SecretHex:       "505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f",
			SaltHex:         "e0e1e2e3e4e5e6e7e8e9eaebecedeeef",
			NonceHex:        "f0f1f2f3f4f5f6f7f8f9fafb",
		},
	}
	// The passphrase slot, also from fixed values.
	p := kdf.PBKDF2SHA256Params()
	psalt := xhex(t, "101112131415161718191a1b1c1d1e1f")
	ps := slot{kind: SlotPassphrase, keyVersion: f.KeyVersion, params: encodePassphraseParams(p, psalt)}
	copy(ps.id[:], xhex(t, "2122232425262728292a2b2c2d2e2f30"))
	pkek, err := testHasher.DeriveKey(bg, []byte(f.Passphrase), psalt, p)
	if err != nil {
		t.Fatal(err)
	}
	ps.wrapped = sealWithNonce(t, pkek, xhex(t, "3132333435363738393a3b3c"), mk, slotAAD(f.UserID, &ps))
	r := record{keyVersion: f.KeyVersion, slots: []slot{ps}}

	for _, in := range inputs {
		id, secret, salt := xhex(t, in.CredentialIDHex), xhex(t, in.SecretHex), xhex(t, in.SaltHex)
		s := slot{kind: SlotSecret, id: secretSlotID(id), keyVersion: f.KeyVersion, params: append([]byte{secretSaltLen}, salt...)}
		kek, err := secretKEK(secret, salt, f.UserID, id)
		if err != nil {
			t.Fatal(err)
		}
		aad := slotAAD(f.UserID, &s)
		s.wrapped = sealWithNonce(t, kek, xhex(t, in.NonceHex), mk, aad)
		out := in
		out.SlotIDHex = hex.EncodeToString(s.id[:])
		out.InfoHex = hex.EncodeToString(secretKEKInfo(f.UserID, id))
		out.KEKHex = hex.EncodeToString(kek)
		out.AADHex = hex.EncodeToString(aad)
		out.WrappedHex = hex.EncodeToString(s.wrapped)
		one := record{keyVersion: f.KeyVersion, slots: []slot{s}}
		out.SlotHex = hex.EncodeToString(one.encode()[9:]) // the slot as the record holds it
		f.Slots = append(f.Slots, out)
		r.slots = append(r.slots, s)
	}
	rec := r.encode()
	f.RecordHex = hex.EncodeToString(rec)

	// Negatives. The passphrase slot is bytes 9..124 (1 + 16 + 4 + 2 + 31
	// + 2 + 60), then slot A from a: kind a, id a+1.., key version
	// a+17..a+20, L a+21..a+22, salt length a+23, salt a+24..a+39, W
	// a+40..a+41, nonce a+42..a+53, ciphertext a+54..a+85, tag a+86..a+101.
	a := 9 + 1 + slotIDLen + 4 + 2 + len(ps.params) + 2 + len(ps.wrapped)
	if rec[a] != byte(SlotSecret) {
		t.Fatalf("slot A does not start at %d", a)
	}
	flip := func(b []byte, i int) string {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return hex.EncodeToString(c)
	}
	A, B := f.Slots[0], f.Slots[1]
	neg := func(name, user, cid, secret, record string) {
		f.Negative = append(f.Negative, secretVectorNegative{Name: name, UserID: user, CredentialIDHex: cid, SecretHex: secret, RecordHex: record, Expect: "unlock_failed"})
	}
	neg("A's secret with B's credential ID", f.UserID, B.CredentialIDHex, A.SecretHex, f.RecordHex)
	neg("B's secret with A's credential ID", f.UserID, A.CredentialIDHex, B.SecretHex, f.RecordHex)
	neg("another user's ID", "user-43", A.CredentialIDHex, A.SecretHex, f.RecordHex)
	neg("flipped secret", f.UserID, A.CredentialIDHex, flip(xhex(t, A.SecretHex), 31), f.RecordHex)
	neg("flipped credential ID", f.UserID, flip(xhex(t, A.CredentialIDHex), 0), A.SecretHex, f.RecordHex)
	neg("unknown credential ID", f.UserID, "0badc0de", A.SecretHex, f.RecordHex)
	for _, n := range []struct {
		name string
		at   int
	}{
		{"kind", a}, {"slot id", a + 1}, {"key version", a + 19}, {"params length", a + 22},
		{"salt length", a + 23}, {"salt", a + 30}, {"wrap nonce", a + 44}, {"wrapped key", a + 60}, {"wrap tag", a + 100},
	} {
		neg("record: slot A flipped "+n.name, f.UserID, A.CredentialIDHex, A.SecretHex, flip(rec, n.at))
	}
	// Slot A's key version set to 2, the record's too: a slot at a key
	// version it was not made for.
	moved := bytes.Clone(rec)
	moved[7], moved[a+20] = 2, 2
	neg("record: slot and record key version changed", f.UserID, A.CredentialIDHex, A.SecretHex, hex.EncodeToString(moved))
	neg("record: truncated", f.UserID, B.CredentialIDHex, B.SecretHex, f.RecordHex[:len(f.RecordHex)-2])
	return f
}

func loadSecretVectors(t testing.TB) (secretVectors, []byte) {
	t.Helper()
	raw, err := os.ReadFile(secretVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f secretVectors
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Slots) != 2 || len(f.Negative) < 10 {
		t.Fatalf("secret vectors incomplete: %d slots, %d negatives", len(f.Slots), len(f.Negative))
	}
	return f, raw
}

// secretVectorVault stores recordHex for userID in a fresh store.
func secretVectorVault(t testing.TB, userID, recordHex string) *Vault {
	t.Helper()
	store := memstore.New()
	if err := store.PutVault(bg, userID, xhex(t, recordHex), 0); err != nil {
		t.Fatal(err)
	}
	v, err := New(store, Config{Hasher: testHasher, KDF: kdf.PBKDF2SHA256Params()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The file equals what the inputs give, each secret slot and the
// passphrase slot unlock the record to the master key, and every negative
// fails with ErrUnlockFailed.
func TestSecretSlotVectors(t *testing.T) {
	t.Parallel()
	built := buildSecretVectors(t)
	want, err := json.MarshalIndent(built, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if os.Getenv("KEYHOLD_WRITE_SECRET_VECTORS") == "1" {
		if err := os.WriteFile(secretVectorsPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, raw := loadSecretVectors(t)
	if !bytes.Equal(raw, want) {
		t.Fatalf("%s differs from what its inputs give (KEYHOLD_WRITE_SECRET_VECTORS=1 rewrites it)", secretVectorsPath)
	}
	mk := xhex(t, f.MasterKeyHex)
	check := func(name string, u *Unlocked, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := u.masterKey()
		if err != nil || !bytes.Equal(got, mk) || u.KeyVersion() != f.KeyVersion {
			t.Fatalf("%s: master key %x (version %d), want %x", name, got, u.KeyVersion(), mk)
		}
	}
	for i, s := range f.Slots {
		v := secretVectorVault(t, f.UserID, f.RecordHex)
		u, err := v.UnlockWithSecret(bg, f.UserID, xhex(t, s.CredentialIDHex), xhex(t, s.SecretHex))
		check("slot "+string(rune('A'+i)), u, err)
		if id, _ := SecretSlotID(xhex(t, s.CredentialIDHex)); id != s.SlotIDHex {
			t.Fatalf("SecretSlotID = %s, want %s", id, s.SlotIDHex)
		}
	}
	v := secretVectorVault(t, f.UserID, f.RecordHex)
	u, err := v.Unlock(bg, f.UserID, []byte(f.Passphrase))
	check("passphrase", u, err)
	for _, n := range f.Negative {
		t.Run(n.Name, func(t *testing.T) {
			v := secretVectorVault(t, n.UserID, n.RecordHex)
			u, err := v.UnlockWithSecret(bg, n.UserID, xhex(t, n.CredentialIDHex), xhex(t, n.SecretHex))
			if !errors.Is(err, ErrUnlockFailed) || u != nil {
				t.Fatalf("got %v, want ErrUnlockFailed", err)
			}
		})
	}
}

// pySecretResult is testdata/secret_slot.py's output.
type pySecretResult struct {
	Slots    []secretVectorSlot `json:"slots"`
	Unlocked []string           `json:"unlocked"`
	Negative map[string]string  `json:"negative"`
	Fresh    string             `json:"fresh"`
}

// Python's cryptography (HKDF, AESGCM), from FORMAT.md alone, recomputes
// every derived value of the vectors, unlocks the vector record with each
// secret, refuses every negative, and unlocks a vault that package vault
// made with random salts and nonces.
func TestSecretSlotPython(t *testing.T) {
	t.Parallel()
	py := testenv.Python(t, "python3-cryptography", "cryptography")
	f, _ := loadSecretVectors(t)

	// A fresh vault with random values, and a secret slot added by the API.
	v, store := newTestVault(t)
	u := mustCreate(t, v, "us\u00e9r-py", "a passphrase for python")
	id, secret := randomBytes(48), randomBytes(32)
	if err := v.AddSecretSlot(bg, u, id, secret); err != nil {
		t.Fatal(err)
	}
	rec, err := store.GetVault(bg, "us\u00e9r-py")
	if err != nil {
		t.Fatal(err)
	}
	var res pySecretResult
	runPython(t, py, "secret_slot.py", map[string]any{
		"vectors": f,
		"fresh": map[string]string{
			"user_id": "us\u00e9r-py", "record_hex": hex.EncodeToString(rec.Data),
			"credential_id_hex": hex.EncodeToString(id), "secret_hex": hex.EncodeToString(secret),
		},
	}, &res)
	if len(res.Slots) != len(f.Slots) {
		t.Fatalf("python computed %d slots", len(res.Slots))
	}
	for i := range f.Slots {
		if res.Slots[i] != f.Slots[i] {
			t.Errorf("slot %d: python computed\n%+v\nthe file has\n%+v", i, res.Slots[i], f.Slots[i])
		}
		if res.Unlocked[i] != f.MasterKeyHex {
			t.Errorf("slot %d: python unlocked the record to %s, want %s", i, res.Unlocked[i], f.MasterKeyHex)
		}
	}
	for _, n := range f.Negative {
		if got := res.Negative[n.Name]; got != "unlock_failed" {
			t.Errorf("negative %q: python got %q", n.Name, got)
		}
	}
	mk, err := u.masterKey()
	if err != nil {
		t.Fatal(err)
	}
	if res.Fresh != hex.EncodeToString(mk) {
		t.Errorf("python unlocked the fresh vault to %s, want its master key", res.Fresh)
	}
}

// secretMJS runs testdata/webcrypto/secretslot.mjs.
func secretMJS(t *testing.T, node, command string, in any) (map[string]string, int) {
	t.Helper()
	stdin, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := execNode(t, node, "secretslot.mjs", command)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if exit := (*exitError)(nil); errors.As(err, &exit) && exit.Exited() {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("node secretslot.mjs %s: %v\nstderr: %s", command, err, stderr.Bytes())
	}
	var out map[string]string
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("node secretslot.mjs %s (exit %d): %v\nstdout: %s\nstderr: %s", command, code, err, stdout.Bytes(), stderr.Bytes())
	}
	return out, code
}

// WebCrypto (Node), as a browser client of issue 14 will: it recomputes
// each vector slot byte for byte with crypto.subtle's HKDF and AES-GCM,
// unlocks the vector record and a fresh vault made by package vault, and
// refuses the negatives; a slot it makes for a fresh vault's master key
// unlocks in Go.
func TestSecretSlotWebCrypto(t *testing.T) {
	t.Parallel()
	node := webcryptoNode(t)
	f, _ := loadSecretVectors(t)
	for i, s := range f.Slots {
		out, code := secretMJS(t, node, "make", map[string]any{
			"user_id": f.UserID, "key_version": f.KeyVersion, "master_key_hex": f.MasterKeyHex,
			"credential_id_hex": s.CredentialIDHex, "secret_hex": s.SecretHex, "salt_hex": s.SaltHex, "nonce_hex": s.NonceHex,
		})
		if code != 0 || out["slot_hex"] != s.SlotHex || out["kek_hex"] != s.KEKHex || out["slot_id_hex"] != s.SlotIDHex {
			t.Fatalf("slot %d: node made %v (exit %d), want slot %s", i, out, code, s.SlotHex)
		}
		out, code = secretMJS(t, node, "unlock", map[string]any{
			"user_id": f.UserID, "record_hex": f.RecordHex, "credential_id_hex": s.CredentialIDHex, "secret_hex": s.SecretHex,
		})
		if code != 0 || out["master_key_hex"] != f.MasterKeyHex {
			t.Fatalf("slot %d: node unlock: %v (exit %d)", i, out, code)
		}
	}
	for _, n := range f.Negative {
		out, code := secretMJS(t, node, "unlock", map[string]any{
			"user_id": n.UserID, "record_hex": n.RecordHex, "credential_id_hex": n.CredentialIDHex, "secret_hex": n.SecretHex,
		})
		if code == 0 || out["error"] != "unlock_failed" {
			t.Errorf("negative %q: node gave %v (exit %d)", n.Name, out, code)
		}
	}

	// A fresh vault: Go's slot unlocks in Node, Node's slot unlocks in Go.
	v, store := newTestVault(t)
	user := "us\u00e9r-node"
	u := mustCreate(t, v, user, "a passphrase for node")
	id, secret := randomBytes(64), randomBytes(32)
	if err := v.AddSecretSlot(bg, u, id, secret); err != nil {
		t.Fatal(err)
	}
	rec, err := store.GetVault(bg, user)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := u.masterKey()
	if err != nil {
		t.Fatal(err)
	}
	out, code := secretMJS(t, node, "unlock", map[string]any{
		"user_id": user, "record_hex": hex.EncodeToString(rec.Data), "credential_id_hex": hex.EncodeToString(id), "secret_hex": hex.EncodeToString(secret),
	})
	if code != 0 || out["master_key_hex"] != hex.EncodeToString(mk) {
		t.Fatalf("node unlock of Go's slot: %v (exit %d)", out, code)
	}
	id2, secret2 := randomBytes(20), randomBytes(32)
	out, code = secretMJS(t, node, "make", map[string]any{
		"user_id": user, "key_version": u.KeyVersion(), "master_key_hex": hex.EncodeToString(mk),
		"credential_id_hex": hex.EncodeToString(id2), "secret_hex": hex.EncodeToString(secret2),
	})
	if code != 0 {
		t.Fatalf("node make: %v (exit %d)", out, code)
	}
	// Put Node's slot into the stored record, as a client would hand it in.
	r, err := decodeRecord(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	one, err := decodeRecord(append([]byte{'K', 'H', 'V', 1, 0, 0, 0, 1, 1}, xhex(t, out["slot_hex"])...))
	if err != nil {
		t.Fatalf("node's slot does not decode: %v", err)
	}
	r.slots = append(r.slots, one.slots[0])
	if err := store.PutVault(bg, user, r.encode(), rec.Version); err != nil {
		t.Fatal(err)
	}
	nu, err := v.UnlockWithSecret(bg, user, id2, secret2)
	if err != nil {
		t.Fatalf("Go unlock of node's slot: %v", err)
	}
	if got, _ := nu.masterKey(); !bytes.Equal(got, mk) {
		t.Fatal("node's slot unlocked another key")
	}
	if _, err := v.UnlockWithSecret(bg, user, id2, secret); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("another secret on node's slot: %v", err)
	}
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

type exitError = exec.ExitError

// execNode returns the command running node on a script of
// testdata/webcrypto, bounded by two minutes.
func execNode(t *testing.T, node, script, command string) *exec.Cmd {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("testdata", "webcrypto", script))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return exec.CommandContext(ctx, node, path, command)
}
