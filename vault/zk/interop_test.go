package zk_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/session"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/zk"
)

// The interop tests prove that package vault (Go) and client.js (the
// browser client, run in Node) read each other's vault records and
// records, for every slot kind and record shape, and that the client works
// against the real Server. testdata/interop.mjs runs the client's
// operations on the Go test's behalf; every expectation is checked here.
//
// PBKDF2 at 600,000 iterations costs about 0.3 s per run in Node and in Go,
// so each test derives a passphrase key only where the passphrase is what
// is tested; other unlocks use recovery keys and secrets.

// Passphrases whose NFKC forms are equal ("file PASS 12 é") while their
// bytes differ: a ligature, full-width letters or digits, a decomposed or
// precomposed "é". A side that did not normalise would derive another key.
const (
	ixPassGo    = "\ufb01le \uff30\uff21\uff33\uff33 12 e\u0301"      // "ﬁle ＰＡＳＳ 12 é" (é decomposed)
	ixPassJS    = "\ufb01le PASS \uff11\uff12 \u00e9"                 // "ﬁle PASS １２ é"
	ixPassJS2   = "fi\u200ble PASS 12 \u00e9"                         // not NFKC-equal: a zero-width space
	ixPassNFKC  = "file PASS 12 \u00e9"                               // the normal form itself
	ixPassOldJS = "old \ufb03ce \uff30\uff41\uff53\uff53\uff50\uff48" // "old ﬃce Ｐａｓｓｐｈ", NFKC "old ffice Passph"
	ixPassOldGo = "old ffice Passph"
)

const ixNodeTimeout = 2 * time.Minute

// ---- the node process ----

// ixNode is one node process running testdata/interop.mjs, which answers
// one JSON line per request line.
type ixNode struct {
	t      *testing.T
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *ixBuffer
	id     int
}

// ixBuffer is a bytes.Buffer safe for the writes of exec's copying
// goroutine and the test's reads.
type ixBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *ixBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *ixBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startIxNode(t *testing.T) *ixNode {
	t.Helper()
	node := testenv.Node(t)
	ctx, cancel := context.WithTimeout(context.Background(), ixNodeTimeout)
	cmd := exec.CommandContext(ctx, node, "testdata/interop.mjs")
	cmd.WaitDelay = 5 * time.Second
	n := &ixNode{t: t, stderr: &ixBuffer{}}
	cmd.Stderr = n.stderr
	var err error
	if n.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.out = bufio.NewReaderSize(stdout, 1<<20)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() {
		n.in.Close()
		err := cmd.Wait()
		cancel()
		if err != nil && !t.Failed() {
			t.Errorf("node interop.mjs: %v\n%s", err, n.stderr)
		}
	})
	return n
}

// ixArgs are the arguments of one request (see interop.mjs for the
// conventions).
type ixArgs map[string]any

// user sets the user ID: as a string when it is UTF-8 (the client encodes
// it), else as raw bytes.
func (a ixArgs) user(id string) ixArgs {
	if utf8.ValidString(id) {
		a["user"] = id
	} else {
		a["user_hex"] = hex.EncodeToString([]byte(id))
	}
	return a
}

// context sets the context, the same way.
func (a ixArgs) context(c []byte) ixArgs {
	if utf8.Valid(c) {
		a["context"] = string(c)
	} else {
		a["context_hex"] = hex.EncodeToString(c)
	}
	return a
}

// ixResult is any answer of interop.mjs; each op fills some fields.
type ixResult struct {
	RecordHex    string   `json:"record_hex"`
	UserHex      string   `json:"user_hex"`
	KeyVersion   uint32   `json:"key_version"`
	Retired      []uint32 `json:"retired"`
	Fingerprint  string   `json:"fingerprint"`
	Slots        []ixSlot `json:"slots"`
	RecoveryKeys []string `json:"recovery_keys"`
	NewKey       string   `json:"new_key"`
	SealedHex    string   `json:"sealed_hex"`
	PlaintextHex string   `json:"plaintext_hex"`
	Version      string   `json:"version"`
	ID           string   `json:"id"`
	Records      []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"records"`
	Entries map[string]string `json:"entries"`
}

type ixSlot struct {
	Kind       int    `json:"kind"`
	ID         string `json:"id"`
	KeyVersion uint32 `json:"key_version"`
}

// ixError is a failed request: the ZKError's code ("" for another
// exception) and message.
type ixError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (r ixResult) record(t *testing.T) []byte    { return ixUnhex(t, r.RecordHex) }
func (r ixResult) sealed(t *testing.T) []byte    { return ixUnhex(t, r.SealedHex) }
func (r ixResult) plaintext(t *testing.T) []byte { return ixUnhex(t, r.PlaintextHex) }

func ixUnhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("node answered bad hex: %v", err)
	}
	return b
}

// call runs one op in node.
func (n *ixNode) call(op string, args ixArgs) (ixResult, *ixError) {
	n.t.Helper()
	n.id++
	line, err := json.Marshal(map[string]any{"id": n.id, "op": op, "args": args})
	if err != nil {
		n.t.Fatal(err)
	}
	if _, err := n.in.Write(append(line, '\n')); err != nil {
		n.t.Fatalf("writing to node (%s): %v\n%s", op, err, n.stderr)
	}
	answer, err := n.out.ReadBytes('\n')
	if err != nil {
		n.t.Fatalf("reading node's answer to %s: %v\nstderr: %s", op, err, n.stderr)
	}
	var a struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *ixError        `json:"error"`
	}
	if err := json.Unmarshal(answer, &a); err != nil || a.ID != n.id {
		n.t.Fatalf("node's answer to %s (id %d): %v: %.300s", op, n.id, err, answer)
	}
	if a.Error != nil {
		return ixResult{}, a.Error
	}
	var r ixResult
	if err := json.Unmarshal(a.Result, &r); err != nil {
		n.t.Fatalf("node's result of %s: %v", op, err)
	}
	return r, nil
}

// must runs op, which must succeed.
func (n *ixNode) must(what, op string, args ixArgs) ixResult {
	n.t.Helper()
	r, e := n.call(op, args)
	if e != nil {
		n.t.Fatalf("%s: node %s failed: %q: %s", what, op, e.Code, e.Message)
	}
	return r
}

// fails runs op, which must fail with a ZKError of code want.
func (n *ixNode) fails(what, op string, args ixArgs, want string) {
	n.t.Helper()
	r, e := n.call(op, args)
	switch {
	case e == nil:
		n.t.Errorf("%s: node %s succeeded (%+v), want ZKError %q", what, op, ixShort(r), want)
	case e.Code != want:
		n.t.Errorf("%s: node %s failed with %q, want %q: %s", what, op, e.Code, want, e.Message)
	}
}

// ixShort is r without its long hex fields, for messages.
func ixShort(r ixResult) ixResult {
	r.RecordHex, r.SealedHex = "…", "…"
	if len(r.PlaintextHex) > 64 {
		r.PlaintextHex = r.PlaintextHex[:64] + "…"
	}
	return r
}

// ---- shared fixtures ----

// ixShape is one sealed record's shape.
type ixShape struct {
	name      string
	format2   bool
	version   uint64 // the record version (0 for format 1)
	plaintext []byte
	context   []byte
}

// ixShapes returns every combination of envelope format and record
// version, plaintext and context that the tests seal.
func ixShapes() []ixShape {
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	longCtx := make([]byte, vault.MaxContextLen)
	for i := range longCtx {
		longCtx[i] = byte(255 - i%256) // not UTF-8: sent as bytes
	}
	plaintexts := []struct {
		name string
		b    []byte
	}{{"empty", []byte{}}, {"1 byte", []byte{0x5a}}, {"64 KiB", big}, {"not UTF-8", []byte{0xff, 0xfe, 0xc3, 0x28, 0x80, 0xed, 0xa0, 0x80, 0x00}}}
	contexts := []struct {
		name string
		b    []byte
	}{{"empty context", []byte{}}, {"unicode context", []byte("notes/Ωμέγα/日本語/🔐 café")}, {"1024-byte context", longCtx}}
	formats := []struct {
		name    string
		format2 bool
		version uint64
	}{{"format 1", false, 0}, {"format 2 v0", true, 0}, {"format 2 v1", true, 1}, {"format 2 vmax", true, math.MaxUint64}}
	var out []ixShape
	for _, f := range formats {
		for _, p := range plaintexts {
			for _, c := range contexts {
				out = append(out, ixShape{name: f.name + ", " + p.name + ", " + c.name, format2: f.format2, version: f.version, plaintext: p.b, context: c.b})
			}
		}
	}
	return out
}

// ixOtherContext returns a context that differs from c in one byte.
func ixOtherContext(c []byte) []byte {
	if len(c) == 0 {
		return []byte("x")
	}
	o := bytes.Clone(c)
	o[len(o)-1] ^= 1
	return o
}

func (s ixShape) seal(t *testing.T, u *vault.Unlocked) []byte {
	t.Helper()
	var sealed []byte
	var err error
	if s.format2 {
		sealed, err = u.SealVersion(s.plaintext, s.context, s.version)
	} else {
		sealed, err = u.Seal(s.plaintext, s.context)
	}
	if err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
	return sealed
}

// ixWrapper is a KeyWrapper (a slot of kind 4) with AES-GCM under its own
// key; its wrapped field is 63 bytes (a 3-byte tag in front), not the 60
// of the other kinds.
type ixWrapper struct{ key []byte }

func newIxWrapper() *ixWrapper {
	k := make([]byte, 32)
	rand.Read(k)
	return &ixWrapper{key: k}
}

func (w *ixWrapper) ID() string { return "interop-kms" }

func (w *ixWrapper) aead() cipher.AEAD {
	b, _ := aes.NewCipher(w.key)
	g, _ := cipher.NewGCM(b)
	return g
}

func (w *ixWrapper) Wrap(_ context.Context, key, aad []byte) ([]byte, error) {
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return w.aead().Seal(append([]byte("ixw"), nonce...), nonce, key, aad), nil
}

func (w *ixWrapper) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < 3+12 || string(wrapped[:3]) != "ixw" {
		return nil, errors.New("not ours")
	}
	return w.aead().Open(nil, wrapped[3:15], wrapped[15:], aad)
}

// ixPassphraseSlot returns the algorithm and iterations of the record's
// first slot (FORMAT.md §3.1, §3.2), which must be a passphrase slot.
func ixPassphraseSlot(t *testing.T, rec []byte) (alg byte, iterations uint32) {
	t.Helper()
	// magic 4, key version 4, n 1, then kind 1, id 16, key version 4, L 2, params.
	if len(rec) < 46 || rec[9] != 1 {
		t.Fatalf("the record's first slot is not a passphrase slot")
	}
	return rec[32], binary.BigEndian.Uint32(rec[42:46])
}

// ixCustodyPayload opens u's custody blob (FORMAT.md §3.6) with the key
// it was sealed under: the key version, the master key and the retired
// keys, as the payload's bytes.
func ixCustodyPayload(t *testing.T, u *vault.Unlocked) []byte {
	t.Helper()
	ck := make([]byte, vault.CustodyKeyLen)
	rand.Read(ck)
	blob, err := u.SealForCustody(ck, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := aes.NewCipher(ck)
	g, _ := cipher.NewGCM(b)
	payload, err := g.Open(nil, blob[4:16], blob[16:], ixCustodyAAD(u.UserID()))
	if err != nil {
		t.Fatalf("opening the custody blob: %v", err)
	}
	return payload
}

func ixCustodyAAD(userID string) []byte {
	aad := append([]byte("keyhold/v1/vault/custody\x00"), byte(len(userID)>>8), byte(len(userID)))
	return append(aad, userID...)
}

// ixMasterKey returns u's current master key.
func ixMasterKey(t *testing.T, u *vault.Unlocked) []byte {
	t.Helper()
	return ixCustodyPayload(t, u)[4:36]
}

// ixRebind returns an Unlocked of another user ID with u's keys (current
// and retired): the same master key, so a record that does not open with
// it is refused because of the user ID alone.
func ixRebind(t *testing.T, u *vault.Unlocked, userID string) *vault.Unlocked {
	t.Helper()
	payload := ixCustodyPayload(t, u)
	ck := make([]byte, vault.CustodyKeyLen)
	rand.Read(ck)
	b, _ := aes.NewCipher(ck)
	g, _ := cipher.NewGCM(b)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	blob := g.Seal(append([]byte("KHC\x01"), nonce...), nonce, payload, ixCustodyAAD(userID))
	o, err := vault.OpenCustody(userID, blob, ck, nil)
	if err != nil {
		t.Fatalf("OpenCustody for %q: %v", userID, err)
	}
	t.Cleanup(o.Lock)
	return o
}

func ixFingerprint(t *testing.T, u *vault.Unlocked) string {
	t.Helper()
	fp, err := u.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// ixSameSlots compares node's slots() with Go's Slots.
func ixSameSlots(t *testing.T, what string, js []ixSlot, goSlots []vault.SlotInfo) {
	t.Helper()
	if len(js) != len(goSlots) {
		t.Errorf("%s: node lists %d slots, Go %d", what, len(js), len(goSlots))
		return
	}
	for i, s := range goSlots {
		if js[i].Kind != int(s.Kind) || js[i].ID != s.ID || js[i].KeyVersion != s.KeyVersion {
			t.Errorf("%s: slot %d: node %+v, Go %+v", what, i, js[i], s)
		}
	}
}

// ixVaultFrom stores rec as userID's vault record in a new memstore and
// returns a Vault over it.
func ixVaultFrom(t *testing.T, userID string, rec []byte) (*vault.Vault, *memstore.Store) {
	t.Helper()
	if _, err := vault.RecordKeyVersion(rec); err != nil {
		t.Fatalf("vault.RecordKeyVersion refuses the record: %v", err)
	}
	store := memstore.New()
	if err := store.PutVault(context.Background(), userID, rec, 0); err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(store, vault.Config{KDF: kdf.PBKDF2SHA256Params()})
	if err != nil {
		t.Fatal(err)
	}
	return v, store
}

func ixVault(t *testing.T, p kdf.Params) (*vault.Vault, *memstore.Store) {
	t.Helper()
	store := memstore.New()
	v, err := vault.New(store, vault.Config{KDF: p})
	if err != nil {
		t.Fatal(err)
	}
	return v, store
}

func ixRecord(t *testing.T, store *memstore.Store, userID string) []byte {
	t.Helper()
	r, err := store.GetVault(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return r.Data
}

func ixRandom(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// ixLongUser is a user ID of 255 bytes, not UTF-8 (node gets it as bytes).
func ixLongUser() string {
	b := make([]byte, storage.MaxUserIDLen)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return string(b)
}

func TestInteropPassphrasesAreNFKCEqual(t *testing.T) {
	for _, p := range []string{ixPassGo, ixPassJS} {
		if p == ixPassNFKC || norm.NFKC.String(p) != ixPassNFKC {
			t.Errorf("%q: NFKC %q, want another string that normalises to %q", p, norm.NFKC.String(p), ixPassNFKC)
		}
	}
	if ixPassGo == ixPassJS || norm.NFKC.String(ixPassJS2) == ixPassNFKC {
		t.Error("the passphrases do not test what they should")
	}
	if ixPassOldJS == ixPassOldGo || norm.NFKC.String(ixPassOldJS) != ixPassOldGo {
		t.Errorf("old passphrase: NFKC %q", norm.NFKC.String(ixPassOldJS))
	}
}

// ---- 1. Go creates, JS opens ----

// TestInteropGoVaultsOpenInJS: vault records and records made by package
// vault open in client.js: every slot kind (a wrapper slot skipped),
// PBKDF2-SHA256 and -SHA512 passphrase slots, an Argon2id slot refused as
// "unsupported" while recovery keys and secrets still open that vault, a
// rotated vault's retired key, every record shape; the refusals
// (rollback, another context, another user) and equal fingerprints.
func TestInteropGoVaultsOpenInJS(t *testing.T) {
	ctx := context.Background()
	n := startIxNode(t)
	const userA = "Ünïcødé-用户-🔑"
	const userB = "alice@example.com"
	userC := ixLongUser()
	const userD = "dora"
	cred16, cred64 := ixRandom(16), ixRandom(64)
	secret16, secret64 := ixRandom(32), ixRandom(32)

	// Vault A: PBKDF2-SHA256 at 600,000 iterations, a wrapper slot, two
	// secret slots and two recovery keys, in that order (the client must
	// step over the wrapper and the secrets to find the recovery slots).
	va, storeA := ixVault(t, kdf.PBKDF2SHA256Params())
	ua, err := va.Create(ctx, userA, []byte(ixPassGo))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ua.Lock)
	wrapper := newIxWrapper()
	if err := va.AddWrapperSlot(ctx, ua, wrapper); err != nil {
		t.Fatal(err)
	}
	if err := va.AddSecretSlot(ctx, ua, cred16, secret16); err != nil {
		t.Fatal(err)
	}
	if err := va.AddSecretSlot(ctx, ua, cred64, secret64); err != nil {
		t.Fatal(err)
	}
	keysA, err := va.RegenerateRecoveryKeys(ctx, ua, 2)
	if err != nil {
		t.Fatal(err)
	}
	recA := ixRecord(t, storeA, userA)
	if alg, it := ixPassphraseSlot(t, recA); alg != 2 || it != 600000 {
		t.Fatalf("vault A's passphrase slot: algorithm %d, %d iterations", alg, it)
	}
	slotsA, err := va.Slots(ctx, userA)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []vault.SlotKind
	for _, s := range slotsA {
		kinds = append(kinds, s.Kind)
	}
	if !slices.Equal(kinds, []vault.SlotKind{vault.SlotPassphrase, vault.SlotWrapper, vault.SlotSecret, vault.SlotSecret, vault.SlotRecovery, vault.SlotRecovery}) {
		t.Fatalf("vault A's slots: %v", kinds)
	}
	fpA := ixFingerprint(t, ua)

	t.Run("PBKDF2-SHA256 passphrase, NFKC", func(t *testing.T) {
		r := n.must("vault A", "unlockPassphrase", ixArgs{"vault": "A-passphrase", "record_hex": hex.EncodeToString(recA), "passphrase": ixPassJS}.user(userA))
		if r.Fingerprint != fpA || r.KeyVersion != 1 || len(r.Retired) != 0 {
			t.Errorf("node: fingerprint %s, key version %d, retired %v; Go: %s, 1, none", r.Fingerprint, r.KeyVersion, r.Retired, fpA)
		}
		if !bytes.Equal(r.record(t), recA) {
			t.Error("node's record after an unlock differs from the record it read")
		}
		ixSameSlots(t, "vault A", r.Slots, slotsA)
		n.fails("a passphrase with another NFKC form", "unlockPassphrase", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(recA), "passphrase": ixPassJS2}.user(userA), "unlock_failed")
	})
	t.Run("secret slots", func(t *testing.T) {
		for _, c := range []struct {
			name       string
			id, secret []byte
		}{{"16-byte credential ID", cred16, secret16}, {"64-byte credential ID", cred64, secret64}} {
			r := n.must(c.name, "unlockSecret", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(recA), "credential_hex": hex.EncodeToString(c.id), "secret_hex": hex.EncodeToString(c.secret)}.user(userA))
			if r.Fingerprint != fpA {
				t.Errorf("%s: node's fingerprint %s, Go's %s", c.name, r.Fingerprint, fpA)
			}
			id := n.must(c.name, "secretSlotId", ixArgs{"credential_hex": hex.EncodeToString(c.id)}).ID
			if want, _ := vault.SecretSlotID(c.id); id != want {
				t.Errorf("%s: node's slot ID %s, Go's %s", c.name, id, want)
			}
		}
		n.fails("one credential's ID with the other's secret", "unlockSecret", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(recA), "credential_hex": hex.EncodeToString(cred16), "secret_hex": hex.EncodeToString(secret64)}.user(userA), "unlock_failed")
		n.fails("a secret slot for another user", "unlockSecret", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(recA), "credential_hex": hex.EncodeToString(cred16), "secret_hex": hex.EncodeToString(secret16)}.user(userB), "unlock_failed")
	})
	t.Run("recovery key replaced, Go reads the new slot", func(t *testing.T) {
		n.fails("a recovery key for another user", "unlockRecovery", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(recA), "key": keysA[0].Reveal()}.user(userB), "unlock_failed")
		// Typed in lower case, without dashes: the forgiving parse.
		typed := strings.ToLower(strings.ReplaceAll(keysA[1].Reveal(), "-", " "))
		r := n.must("recovery key", "unlockRecovery", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(recA), "key": typed}.user(userA))
		if r.Fingerprint != fpA || r.NewKey == "" || r.NewKey == keysA[1].Reveal() {
			t.Fatalf("node's recovery unlock: fingerprint %s (Go %s), new key given %v", r.Fingerprint, fpA, r.NewKey != "")
		}
		newRec := r.record(t)
		if bytes.Equal(newRec, recA) {
			t.Fatal("node's recovery unlock left the record as it was")
		}
		n.fails("the used key on node's new record", "unlockRecovery", ixArgs{"vault": "x", "record_hex": r.RecordHex, "key": keysA[1].Reveal()}.user(userA), "unlock_failed")
		v2, _ := ixVaultFrom(t, userA, newRec)
		if _, _, err := v2.UnlockWithRecoveryKey(ctx, userA, keysA[1].Reveal()); !errors.Is(err, vault.ErrUnlockFailed) {
			t.Errorf("Go: the used recovery key on node's new record: %v, want ErrUnlockFailed", err)
		}
		u2, _, err := v2.UnlockWithRecoveryKey(ctx, userA, r.NewKey)
		if err != nil {
			t.Fatalf("Go: node's new recovery key: %v", err)
		}
		if fp := ixFingerprint(t, u2); fp != fpA {
			t.Errorf("Go: fingerprint %s after node's recovery, want %s", fp, fpA)
		}
		u2.Lock()
		if _, _, err := v2.UnlockWithRecoveryKey(ctx, userA, keysA[0].Reveal()); err != nil {
			t.Errorf("Go: the other recovery key, on node's record: %v", err)
		}
		// Node kept the wrapper and secret slots as they were.
		if u3, err := v2.UnlockWithWrapper(ctx, userA, wrapper); err != nil {
			t.Errorf("Go: the wrapper slot after node rewrote the record: %v", err)
		} else {
			u3.Lock()
		}
		if u3, err := v2.UnlockWithSecret(ctx, userA, cred64, secret64); err != nil {
			t.Errorf("Go: a secret slot after node rewrote the record: %v", err)
		} else {
			u3.Lock()
		}
	})
	t.Run("every record shape", func(t *testing.T) {
		n.must("vault A", "unlockSecret", ixArgs{"vault": "A", "record_hex": hex.EncodeToString(recA), "credential_hex": hex.EncodeToString(cred16), "secret_hex": hex.EncodeToString(secret16)}.user(userA))
		// A vault of another user with A's master key, in node, so that a
		// refusal can only come from the user ID in the associated data.
		mk := ixMasterKey(t, ua)
		n.must("another user, A's master key", "unsafeFromMasterKey", ixArgs{"vault": "A-other", "master_key_hex": hex.EncodeToString(mk), "passphrase": "irrelevant passphrase", "key_version": 1}.user(userB))
		for _, s := range ixShapes() {
			sealed := s.seal(t, ua)
			a := func() ixArgs {
				return ixArgs{"vault": "A", "sealed_hex": hex.EncodeToString(sealed)}.context(s.context)
			}
			r := n.must(s.name, "open", a())
			if !bytes.Equal(r.plaintext(t), s.plaintext) {
				t.Errorf("%s: node's open gave %d bytes, want %d", s.name, len(r.plaintext(t)), len(s.plaintext))
			}
			args := a()
			args["min"] = strconv.FormatUint(s.version, 10)
			r = n.must(s.name, "open", args)
			if !bytes.Equal(r.plaintext(t), s.plaintext) || r.Version != strconv.FormatUint(s.version, 10) {
				t.Errorf("%s: node's openVersion: version %s, same plaintext %v", s.name, r.Version, bytes.Equal(r.plaintext(t), s.plaintext))
			}
			if s.version < math.MaxUint64 {
				args := a()
				args["min"] = strconv.FormatUint(s.version+1, 10)
				n.fails(s.name+", min+1", "open", args, "rollback")
			}
			other := ixArgs{"vault": "A", "sealed_hex": hex.EncodeToString(sealed), "min": "0"}.context(ixOtherContext(s.context))
			n.fails(s.name+", another context", "open", other, "decrypt")
			otherUser := a()
			otherUser["vault"] = "A-other"
			n.fails(s.name+", another user", "open", otherUser, "decrypt")
		}
	})

	t.Run("Argon2id vault", func(t *testing.T) {
		vb, storeB := ixVault(t, kdf.Params{}) // Go's default, Argon2id
		ub, err := vb.Create(ctx, userB, []byte(ixPassGo))
		if err != nil {
			t.Fatal(err)
		}
		defer ub.Lock()
		if err := vb.AddSecretSlot(ctx, ub, cred16, secret16); err != nil {
			t.Fatal(err)
		}
		keys, err := vb.RegenerateRecoveryKeys(ctx, ub, 1)
		if err != nil {
			t.Fatal(err)
		}
		rec := ixRecord(t, storeB, userB)
		if alg, _ := ixPassphraseSlot(t, rec); alg != 1 {
			t.Fatalf("vault B's passphrase slot has algorithm %d, want Argon2id (1)", alg)
		}
		fp := ixFingerprint(t, ub)
		n.fails("Argon2id passphrase slot", "unlockPassphrase", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(rec), "passphrase": ixPassJS}.user(userB), "unsupported")
		sealed, err := ub.SealVersion([]byte("argon2id vault's record"), []byte("b/1"), 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, how := range []struct {
			op   string
			args ixArgs
		}{
			{"unlockRecovery", ixArgs{"key": keys[0].Reveal()}},
			{"unlockSecret", ixArgs{"credential_hex": hex.EncodeToString(cred16), "secret_hex": hex.EncodeToString(secret16)}},
		} {
			how.args["vault"], how.args["record_hex"] = "B", hex.EncodeToString(rec)
			r := n.must("Argon2id vault, "+how.op, how.op, how.args.user(userB))
			if r.Fingerprint != fp {
				t.Errorf("%s: node's fingerprint %s, Go's %s", how.op, r.Fingerprint, fp)
			}
			o := n.must(how.op+": a record", "open", ixArgs{"vault": "B", "sealed_hex": hex.EncodeToString(sealed), "context": "b/1", "min": "5"})
			if string(o.plaintext(t)) != "argon2id vault's record" || o.Version != "5" {
				t.Errorf("%s: record opened to %q at %s", how.op, o.plaintext(t), o.Version)
			}
		}
	})

	t.Run("rotated vault, 255-byte user", func(t *testing.T) {
		vc, storeC := ixVault(t, kdf.InteractiveParams())
		uc, err := vc.Create(ctx, userC, []byte(ixPassGo))
		if err != nil {
			t.Fatal(err)
		}
		oldKeys, err := vc.RegenerateRecoveryKeys(ctx, uc, 1)
		if err != nil {
			t.Fatal(err)
		}
		before1, _ := uc.Seal([]byte("sealed at key version 1, format 1"), []byte("c/1"))
		before2, _ := uc.SealVersion([]byte("sealed at key version 1, format 2"), []byte("c/2"), 7)
		uc.Lock()
		u2, keys, err := vc.RotateMasterKey(ctx, userC, []byte(ixPassGo))
		if err != nil {
			t.Fatal(err)
		}
		defer u2.Lock()
		after1, _ := u2.Seal([]byte("sealed at key version 2, format 1"), []byte("c/3"))
		after2, _ := u2.SealVersion([]byte("sealed at key version 2, format 2"), []byte("c/4"), 8)
		for i, s := range [][]byte{before1, before2, after1, after2} {
			if kv := binary.BigEndian.Uint32(s[2:6]); kv != uint32(1+i/2) {
				t.Fatalf("record %d is at key version %d", i, kv)
			}
		}
		if len(keys) == 0 {
			t.Fatal("RotateMasterKey gave no recovery key")
		}
		rec := ixRecord(t, storeC, userC)
		n.fails("a recovery key from before the rotation", "unlockRecovery", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(rec), "key": oldKeys[0].Reveal()}.user(userC), "unlock_failed")
		r := n.must("rotated vault", "unlockRecovery", ixArgs{"vault": "C", "record_hex": hex.EncodeToString(rec), "key": keys[0].Reveal()}.user(userC))
		if fp := ixFingerprint(t, u2); r.Fingerprint != fp || r.KeyVersion != u2.KeyVersion() || !slices.Equal(r.Retired, u2.RetiredVersions()) {
			t.Errorf("node: fingerprint %s, key version %d, retired %v; Go: %s, %d, %v", r.Fingerprint, r.KeyVersion, r.Retired, fp, u2.KeyVersion(), u2.RetiredVersions())
		}
		if r.KeyVersion != 2 || !slices.Equal(r.Retired, []uint32{1}) {
			t.Errorf("node: key version %d, retired %v, want 2 and [1]", r.KeyVersion, r.Retired)
		}
		if got, _ := hex.DecodeString(r.UserHex); string(got) != userC {
			t.Errorf("node's user ID is %d bytes, not the 255 given", len(got))
		}
		for _, c := range []struct {
			sealed  []byte
			ctx     string
			version string
			text    string
		}{
			{before1, "c/1", "0", "sealed at key version 1, format 1"},
			{before2, "c/2", "7", "sealed at key version 1, format 2"},
			{after1, "c/3", "0", "sealed at key version 2, format 1"},
			{after2, "c/4", "8", "sealed at key version 2, format 2"},
		} {
			o := n.must(c.text, "open", ixArgs{"vault": "C", "sealed_hex": hex.EncodeToString(c.sealed), "context": c.ctx, "min": c.version})
			if string(o.plaintext(t)) != c.text || o.Version != c.version {
				t.Errorf("%s: node opened %q at %s", c.text, o.plaintext(t), o.Version)
			}
		}
		n.fails("a version 1 record, min 8", "open", ixArgs{"vault": "C", "sealed_hex": hex.EncodeToString(before2), "context": "c/2", "min": "8"}, "rollback")
	})

	t.Run("PBKDF2-SHA512 vault", func(t *testing.T) {
		vd, storeD := ixVault(t, kdf.PBKDF2SHA512Params())
		ud, err := vd.Create(ctx, userD, []byte(ixPassGo))
		if err != nil {
			t.Fatal(err)
		}
		defer ud.Lock()
		rec := ixRecord(t, storeD, userD)
		if alg, it := ixPassphraseSlot(t, rec); alg != 3 || it != kdf.PBKDF2SHA512Params().Iterations {
			t.Fatalf("vault D's passphrase slot: algorithm %d, %d iterations", alg, it)
		}
		r := n.must("PBKDF2-SHA512", "unlockPassphrase", ixArgs{"vault": "D", "record_hex": hex.EncodeToString(rec), "passphrase": ixPassJS}.user(userD))
		if fp := ixFingerprint(t, ud); r.Fingerprint != fp {
			t.Errorf("node's fingerprint %s, Go's %s", r.Fingerprint, fp)
		}
		sealed, _ := ud.SealVersion([]byte("d"), []byte("d/1"), math.MaxUint64)
		o := n.must("PBKDF2-SHA512 record", "open", ixArgs{"vault": "D", "sealed_hex": hex.EncodeToString(sealed), "context": "d/1", "min": "18446744073709551615"})
		if string(o.plaintext(t)) != "d" || o.Version != "18446744073709551615" {
			t.Errorf("node opened %q at %s", o.plaintext(t), o.Version)
		}
	})
}

// ---- 2. JS creates, Go opens ----

// TestInteropJSVaultsOpenInGo: a vault that client.js made and changed
// (secret slots, a new passphrase, new recovery keys) unlocks in package
// vault with the passphrase typed another way, each recovery key and each
// secret; every record shape node sealed opens in Go, and is refused at a
// higher minimum, in another context and for another user.
func TestInteropJSVaultsOpenInGo(t *testing.T) {
	ctx := context.Background()
	n := startIxNode(t)
	const user = "José-ユーザー-🗝"
	cred16, cred64 := ixRandom(16), ixRandom(64)
	secret16, secret64 := ixRandom(32), ixRandom(32)

	created := n.must("create", "create", ixArgs{"vault": "J", "passphrase": ixPassOldJS, "recovery_keys": 3}.user(user))
	if len(created.RecoveryKeys) != 3 || created.KeyVersion != 1 {
		t.Fatalf("node created %d recovery keys at key version %d", len(created.RecoveryKeys), created.KeyVersion)
	}
	var records [][]byte
	records = append(records, created.record(t))
	records = append(records, n.must("addSecretSlot", "addSecretSlot", ixArgs{"vault": "J", "credential_hex": hex.EncodeToString(cred16), "secret_hex": hex.EncodeToString(secret16)}).record(t))
	records = append(records, n.must("addSecretSlot", "addSecretSlot", ixArgs{"vault": "J", "credential_hex": hex.EncodeToString(cred64), "secret_hex": hex.EncodeToString(secret64)}).record(t))
	records = append(records, n.must("changePassphrase", "changePassphrase", ixArgs{"vault": "J", "passphrase": ixPassJS}).record(t))
	regen := n.must("regenerateRecoveryKeys", "regenerateRecoveryKeys", ixArgs{"vault": "J", "n": 2})
	records = append(records, regen.record(t))
	for i, rec := range records {
		if kv, err := vault.RecordKeyVersion(rec); err != nil || kv != 1 {
			t.Errorf("record %d: vault.RecordKeyVersion = %d, %v", i, kv, err)
		}
		if alg, it := ixPassphraseSlot(t, rec); alg != 2 || it != 600000 {
			t.Errorf("record %d: passphrase slot algorithm %d, %d iterations", i, alg, it)
		}
	}
	rec := regen.record(t)
	v, store := ixVaultFrom(t, user, rec)
	slots, err := v.Slots(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	ixSameSlots(t, "node's vault", regen.Slots, slots)

	u, err := v.Unlock(ctx, user, []byte(ixPassGo))
	if err != nil {
		t.Fatalf("Go: the passphrase (typed another way) on node's vault: %v", err)
	}
	t.Cleanup(u.Lock)
	if fp := ixFingerprint(t, u); fp != regen.Fingerprint || u.KeyVersion() != 1 || len(u.RetiredVersions()) != 0 {
		t.Errorf("Go: fingerprint %s, key version %d, retired %v; node: %s", fp, u.KeyVersion(), u.RetiredVersions(), regen.Fingerprint)
	}
	if _, err := v.Unlock(ctx, user, []byte(ixPassOldGo)); !errors.Is(err, vault.ErrUnlockFailed) {
		t.Errorf("Go: the passphrase before node changed it: %v, want ErrUnlockFailed", err)
	}
	for _, c := range []struct {
		name       string
		id, secret []byte
	}{{"16-byte credential ID", cred16, secret16}, {"64-byte credential ID", cred64, secret64}} {
		us, err := v.UnlockWithSecret(ctx, user, c.id, c.secret)
		if err != nil {
			t.Errorf("Go: node's secret slot, %s: %v", c.name, err)
			continue
		}
		if fp := ixFingerprint(t, us); fp != regen.Fingerprint {
			t.Errorf("Go: %s: fingerprint %s", c.name, fp)
		}
		us.Lock()
	}
	if _, err := v.UnlockWithSecret(ctx, user, cred16, secret64); !errors.Is(err, vault.ErrUnlockFailed) {
		t.Errorf("Go: one credential with the other's secret: %v", err)
	}
	for _, k := range created.RecoveryKeys {
		if _, _, err := v.UnlockWithRecoveryKey(ctx, user, k); !errors.Is(err, vault.ErrUnlockFailed) {
			t.Errorf("Go: a recovery key that node's regenerateRecoveryKeys replaced: %v", err)
		}
	}
	var goNewKey string
	for i, k := range regen.RecoveryKeys {
		ur, nk, err := v.UnlockWithRecoveryKey(ctx, user, k)
		if err != nil {
			t.Errorf("Go: node's recovery key %d: %v", i, err)
			continue
		}
		if fp := ixFingerprint(t, ur); fp != regen.Fingerprint {
			t.Errorf("Go: recovery key %d: fingerprint %s", i, fp)
		}
		ur.Lock()
		goNewKey = nk.Reveal()
	}
	// The record Go rewrote (the last recovery slot replaced) goes back to
	// node: Go's new key opens it there, the used one does not.
	afterGo := ixRecord(t, store, user)
	r := n.must("Go's new recovery key", "unlockRecovery", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(afterGo), "key": goNewKey}.user(user))
	if r.Fingerprint != regen.Fingerprint {
		t.Errorf("node: fingerprint %s after Go's recovery", r.Fingerprint)
	}
	n.fails("a recovery key Go used", "unlockRecovery", ixArgs{"vault": "x", "record_hex": hex.EncodeToString(afterGo), "key": regen.RecoveryKeys[1]}.user(user), "unlock_failed")

	other := ixRebind(t, u, "Jose-user")
	same := ixRebind(t, u, user)
	for _, s := range ixShapes() {
		args := ixArgs{"vault": "J", "plaintext_hex": hex.EncodeToString(s.plaintext)}.context(s.context)
		if s.format2 {
			args["version"] = strconv.FormatUint(s.version, 10)
		}
		sealed := n.must(s.name, "seal", args).sealed(t)
		if wantFormat := map[bool]byte{false: 1, true: 2}[s.format2]; sealed[0] != wantFormat {
			t.Fatalf("%s: node sealed format %d", s.name, sealed[0])
		}
		pt, version, err := u.OpenVersion(sealed, s.context, s.version)
		if err != nil || !bytes.Equal(pt, s.plaintext) || version != s.version {
			t.Errorf("%s: Go's OpenVersion: version %d, %v, same plaintext %v", s.name, version, err, bytes.Equal(pt, s.plaintext))
		}
		if pt, err := u.Open(sealed, s.context); err != nil || !bytes.Equal(pt, s.plaintext) {
			t.Errorf("%s: Go's Open: %v", s.name, err)
		}
		if s.version < math.MaxUint64 {
			if _, _, err := u.OpenVersion(sealed, s.context, s.version+1); !errors.Is(err, vault.ErrRollback) {
				t.Errorf("%s: Go's OpenVersion at min+1: %v, want ErrRollback", s.name, err)
			}
		}
		if _, err := u.Open(sealed, ixOtherContext(s.context)); !errors.Is(err, vault.ErrDecrypt) {
			t.Errorf("%s: another context: %v, want ErrDecrypt", s.name, err)
		}
		if _, err := other.Open(sealed, s.context); !errors.Is(err, vault.ErrDecrypt) {
			t.Errorf("%s: another user, same master key: %v, want ErrDecrypt", s.name, err)
		}
		if _, err := same.Open(sealed, s.context); err != nil {
			t.Errorf("%s: the same user and master key, rebuilt: %v", s.name, err)
		}
	}
}

// TestInteropLimits: a passphrase of 1024 bytes (the limit on
// both sides, counted before NFKC) whose NFKC form is ten times longer:
// node makes the vault, Go unlocks it; one more byte is refused by both.
// Likewise the most iterations node writes (4,000,000) unlock in Go.
func TestInteropLimits(t *testing.T) {
	ctx := context.Background()
	n := startIxNode(t)
	const user = "long-passphrase"
	pass := strings.Repeat("\ufdfa", 341) + "a" // U+FDFA: 3 bytes, 18 characters in NFKC
	if len(pass) != 1024 || len(norm.NFKC.String(pass)) < 10*1024 {
		t.Fatalf("passphrase of %d bytes, %d in NFKC", len(pass), len(norm.NFKC.String(pass)))
	}
	created := n.must("create", "create", ixArgs{"vault": "L", "passphrase": pass, "recovery_keys": 0}.user(user))
	v, _ := ixVaultFrom(t, user, created.record(t))
	u, err := v.Unlock(ctx, user, []byte(pass))
	if err != nil {
		t.Fatalf("Go: node's vault with a 1024-byte passphrase: %v", err)
	}
	defer u.Lock()
	if fp := ixFingerprint(t, u); fp != created.Fingerprint {
		t.Errorf("Go's fingerprint %s, node's %s", fp, created.Fingerprint)
	}
	// The most PBKDF2-SHA256 iterations the client writes are within what
	// Go reads.
	most := n.must("create at 4,000,000 iterations", "create", ixArgs{"vault": "M", "passphrase": "many iterations", "recovery_keys": 0, "iterations": 4000000}.user(user))
	if alg, it := ixPassphraseSlot(t, most.record(t)); alg != 2 || it != 4000000 {
		t.Fatalf("algorithm %d, %d iterations", alg, it)
	}
	vm, _ := ixVaultFrom(t, user, most.record(t))
	if um, err := vm.Unlock(ctx, user, []byte("many iterations")); err != nil {
		t.Errorf("Go: node's vault at 4,000,000 iterations: %v", err)
	} else {
		um.Lock()
	}
	n.fails("4,000,001 iterations", "create", ixArgs{"vault": "x", "passphrase": "many iterations", "recovery_keys": 0, "iterations": 4000001}.user(user), "invalid_input")
	n.fails("a 1025-byte passphrase", "create", ixArgs{"vault": "x", "passphrase": pass + "b", "recovery_keys": 0}.user(user), "invalid_input")
	if _, err := v.Unlock(ctx, user, []byte(pass+"b")); err == nil || errors.Is(err, vault.ErrUnlockFailed) {
		t.Errorf("Go: a 1025-byte passphrase: %v, want a refusal before any KDF run", err)
	}
}

// ---- 3. The Client against the Server ----

// ixServer is a zk.Server at /zk/ behind a session manager, with a login
// endpoint, recording every request it receives and every blob written.
type ixServer struct {
	url   string
	store *memstore.Store
	blobs *ixBlobs

	mu       sync.Mutex
	requests [][]byte // each request's line, headers and body
}

// ixBlobs is a BlobStore that keeps a copy of everything written to it.
type ixBlobs struct {
	storage.BlobStore
	mu      sync.Mutex
	written [][]byte
}

func (b *ixBlobs) PutBlob(ctx context.Context, userID, name string, data []byte, expect uint64) error {
	b.mu.Lock()
	b.written = append(b.written, append([]byte(name+"\x00"), data...))
	b.mu.Unlock()
	return b.BlobStore.PutBlob(ctx, userID, name, data, expect)
}

func newIxServer(t *testing.T) *ixServer {
	t.Helper()
	s := &ixServer{store: memstore.New()}
	s.blobs = &ixBlobs{BlobStore: s.store}
	quiet := slog.New(slog.DiscardHandler)
	m, err := session.New(s.store, session.Config{Logger: quiet, AllowInsecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := ratelimit.New(s.store, zk.DefaultRule(), ratelimit.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zk.New(zk.Config{Store: s.blobs, Sessions: m, Limiter: limiter, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Login(r.Context(), r.URL.Query().Get("user"), session.LoginOptions{}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.Handle("/zk/", http.StripPrefix("/zk", srv))
	inner := m.Handler(mux)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var rec bytes.Buffer
		fmt.Fprintf(&rec, "%s %s\n", r.Method, r.URL)
		r.Header.Write(&rec)
		rec.Write(body)
		s.mu.Lock()
		s.requests = append(s.requests, rec.Bytes())
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

// leaks returns the secrets that occur in a request the server received,
// a blob written, or a blob stored.
func (s *ixServer) leaks(t *testing.T, userID string, secrets map[string][]byte) []string {
	t.Helper()
	var haystacks [][]byte
	s.mu.Lock()
	haystacks = append(haystacks, s.requests...)
	s.mu.Unlock()
	s.blobs.mu.Lock()
	haystacks = append(haystacks, s.blobs.written...)
	s.blobs.mu.Unlock()
	infos, err := s.store.ListBlobs(context.Background(), userID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		b, err := s.store.GetBlob(context.Background(), userID, i.Name)
		if err != nil {
			t.Fatal(err)
		}
		haystacks = append(haystacks, b.Data)
	}
	var found []string
	for name, secret := range secrets {
		for _, h := range haystacks {
			if bytes.Contains(h, secret) {
				found = append(found, name)
				break
			}
		}
	}
	slices.Sort(found)
	return found
}

func (s *ixServer) blob(t *testing.T, userID, name string) storage.Blob {
	t.Helper()
	b, err := s.store.GetBlob(context.Background(), userID, name)
	if err != nil {
		t.Fatalf("blob %s: %v", name, err)
	}
	return b
}

// TestInteropClientAgainstServer runs client.js's Client in node against
// the real zk.Server: a vault created, records written, read, deleted and
// listed, a second device unlocking with the passphrase; the server
// putting an older record back (at the next blob version, then as a
// restore from a backup) is refused as "rollback"; the server never
// receives the passphrase, a recovery key or a plaintext; Go opens what
// the client stored.
func TestInteropClientAgainstServer(t *testing.T) {
	ctx := context.Background()
	s := newIxServer(t)
	n := startIxNode(t)
	const user = "Zoë ✓"
	login := "/login?user=" + url.QueryEscape(user)
	pt1 := []byte("first edition of the notes: Grüße 🔏 0123456789")
	pt2 := []byte("second edition of the notes, longer: Grüße 🔏 9876543210")
	ptBin := ixRandom(1000)
	hexOf := hex.EncodeToString
	dev := func(name string) ixArgs { return ixArgs{"client": name, "vault": name} }

	n.must("device 1", "client", ixArgs{"client": "dev1", "origin": s.url, "login": login, "base": "/zk", "ledger": "dev1"})
	created := n.must("createVault", "clientCreateVault", ixArgs{"client": "dev1", "vault": "dev1", "passphrase": ixPassJS, "recovery_keys": 2})
	if b := s.blob(t, user, "/vault"); b.Version != 1 || !bytes.Equal(b.Data, created.record(t)) {
		t.Fatalf("the stored vault record: version %d, same bytes %v", b.Version, bytes.Equal(b.Data, created.record(t)))
	}
	put := func(who, name string, pt []byte, want string) {
		t.Helper()
		a := dev(who)
		a["name"], a["plaintext_hex"] = name, hexOf(pt)
		if r := n.must("put "+name, "clientPut", a); r.Version != want {
			t.Fatalf("put %s: version %s, want %s", name, r.Version, want)
		}
	}
	get := func(who, name string, want []byte, version string) {
		t.Helper()
		a := dev(who)
		a["name"] = name
		r := n.must(who+" get "+name, "clientGet", a)
		if !bytes.Equal(r.plaintext(t), want) || r.Version != version {
			t.Errorf("%s get %s: version %s (want %s), same plaintext %v", who, name, r.Version, version, bytes.Equal(r.plaintext(t), want))
		}
	}
	getFails := func(what, who, vaultName, name, code string) {
		t.Helper()
		a := ixArgs{"client": who, "vault": vaultName, "name": name}
		n.fails(what, "clientGet", a, code)
	}

	put("dev1", "notes", pt1, "1")
	old := s.blob(t, user, "notes")
	put("dev1", "notes", pt2, "2")
	put("dev1", "a.b~c_d-1", ptBin, "1")
	put("dev1", "gone", []byte("short-lived"), "1")
	if r := n.must("delete", "clientDelete", ixArgs{"client": "dev1", "vault": "dev1", "name": "gone"}); r.Version != "2" {
		t.Fatalf("delete: version %s", r.Version)
	}
	getFails("a deleted record", "dev1", "dev1", "gone", "not_found")
	put("dev1", "gone", []byte("short-lived"), "3")
	if r := n.must("delete again", "clientDelete", ixArgs{"client": "dev1", "vault": "dev1", "name": "gone"}); r.Version != "4" {
		t.Fatalf("second delete: version %s", r.Version)
	}
	get("dev1", "notes", pt2, "2")
	l := n.must("list", "clientList", ixArgs{"client": "dev1"})
	if got := fmt.Sprint(l.Records); got != "[{a.b~c_d-1 1} {notes 2}]" {
		t.Errorf("list: %s", got)
	}

	// A second device: its own session and ledger, the passphrase typed
	// another way.
	n.must("device 2", "client", ixArgs{"client": "dev2", "origin": s.url, "login": login, "base": "/zk", "ledger": "dev2"})
	d2 := n.must("device 2 unlock", "clientUnlock", ixArgs{"client": "dev2", "vault": "dev2", "passphrase": ixPassGo})
	if d2.Fingerprint != created.Fingerprint {
		t.Errorf("device 2's fingerprint %s, device 1's %s", d2.Fingerprint, created.Fingerprint)
	}
	get("dev2", "notes", pt2, "2")
	get("dev2", "a.b~c_d-1", ptBin, "1")

	// A recovery key through the Client: the replaced slot is written
	// back (compare and swap) before the unlock resolves.
	n.must("device 4", "client", ixArgs{"client": "dev4", "origin": s.url, "login": login, "base": "/zk", "ledger": "dev4"})
	d4 := n.must("device 4 unlock with a recovery key", "clientUnlock", ixArgs{"client": "dev4", "vault": "dev4", "recovery_key": created.RecoveryKeys[0]})
	if b := s.blob(t, user, "/vault"); b.Version != 2 || !bytes.Equal(b.Data, d4.record(t)) || d4.Fingerprint != created.Fingerprint {
		t.Fatalf("after a recovery through the Client: vault blob version %d, the client's record %v, fingerprint %s", b.Version, bytes.Equal(b.Data, d4.record(t)), d4.Fingerprint)
	}
	get("dev4", "notes", pt2, "2")
	vr, _ := ixVaultFrom(t, user, s.blob(t, user, "/vault").Data)
	if _, _, err := vr.UnlockWithRecoveryKey(ctx, user, created.RecoveryKeys[0]); !errors.Is(err, vault.ErrUnlockFailed) {
		t.Errorf("Go: the recovery key the Client used: %v", err)
	}
	if ur, _, err := vr.UnlockWithRecoveryKey(ctx, user, d4.NewKey); err != nil {
		t.Errorf("Go: the Client's new recovery key: %v", err)
	} else {
		ur.Lock()
	}

	// Go opens what the client stored, with the passphrase typed a third
	// way.
	v, _ := ixVaultFrom(t, user, s.blob(t, user, "/vault").Data)
	u, err := v.Unlock(ctx, user, []byte(ixPassNFKC))
	if err != nil {
		t.Fatalf("Go: unlocking the client's vault from the store: %v", err)
	}
	t.Cleanup(u.Lock)
	if fp := ixFingerprint(t, u); fp != created.Fingerprint {
		t.Errorf("Go's fingerprint %s, the client's %s", fp, created.Fingerprint)
	}
	for _, c := range []struct {
		name    string
		pt      []byte
		version uint64
	}{{"notes", pt2, 2}, {"a.b~c_d-1", ptBin, 1}} {
		b := s.blob(t, user, c.name)
		pt, version, err := u.OpenVersion(b.Data, []byte("keyhold/zk/record/"+c.name), b.Version)
		if err != nil || !bytes.Equal(pt, c.pt) || version != c.version {
			t.Errorf("Go: record %s: version %d, %v", c.name, version, err)
		}
	}
	if pt, _, err := u.OpenVersion(old.Data, []byte("keyhold/zk/record/notes"), 1); err != nil || !bytes.Equal(pt, pt1) {
		t.Errorf("Go: notes version 1: %v", err)
	}

	// Nothing secret reached the server.
	secrets := map[string][]byte{
		"passphrase (device 1's form)": []byte(ixPassJS), "passphrase (device 2's form)": []byte(ixPassGo), "passphrase (NFKC)": []byte(ixPassNFKC),
		"plaintext 1": pt1, "plaintext 2": pt2, "binary plaintext": ptBin, "binary plaintext's first 16 bytes": ptBin[:16],
		"deleted record's plaintext": []byte("short-lived"),
	}
	for i, k := range append(created.RecoveryKeys, d4.NewKey) {
		secrets["recovery key "+strconv.Itoa(i)] = []byte(k)
		secrets["recovery key "+strconv.Itoa(i)+" without dashes"] = []byte(strings.ReplaceAll(k, "-", ""))
	}
	if found := s.leaks(t, user, secrets); len(found) != 0 {
		t.Errorf("the server received or stored: %v", found)
	}

	// The ledger (FORMAT.md §8.1): per record and for the vault.
	ub := base64.RawURLEncoding.EncodeToString([]byte(user))
	led := n.must("ledger", "ledger", ixArgs{"ledger": "dev1"}).Entries
	ledMin := func(k string) string { // a record's entry is JSON {"min": decimal, "tag": ..., ...}
		var e struct {
			Min string `json:"min"`
		}
		if json.Unmarshal([]byte(led[k]), &e) != nil {
			return ""
		}
		return e.Min
	}
	if ledMin("keyhold-zk:"+ub+":notes") != "2" || ledMin("keyhold-zk:"+ub+":a.b~c_d-1") != "1" || led["keyhold-zk:"+ub+"/vault"] != "1" {
		t.Errorf("device 1's ledger: %v", led)
	}

	// The server puts version 1 of notes back, at the next blob version.
	if err := s.store.PutBlob(ctx, user, "notes", old.Data, 2); err != nil {
		t.Fatal(err)
	}
	getFails("version 1 served as blob version 3", "dev1", "dev1", "notes", "rollback")
	getFails("version 1 served as blob version 3, device 2", "dev2", "dev2", "notes", "rollback")
	// A device that never read notes: its ledger knows nothing, the
	// envelope's version (1) against the server's (3) is what it refuses.
	n.must("device 3", "client", ixArgs{"client": "dev3", "origin": s.url, "login": login, "base": "/zk", "ledger": "dev3"})
	getFails("version 1 served as blob version 3, a new device", "dev3", "dev1", "notes", "rollback")

	// A restore from a backup: every blob and version gone, the vault and
	// version 1 of notes back at versions that agree with their envelopes.
	vaultBlob := s.blob(t, user, "/vault")
	if err := s.store.DeleteBlobs(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := s.store.PutBlob(ctx, user, "/vault", vaultBlob.Data, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.store.PutBlob(ctx, user, "notes", old.Data, 0); err != nil {
		t.Fatal(err)
	}
	getFails("version 1 after the ledger saw 2", "dev1", "dev1", "notes", "rollback")
	getFails("a record the ledger saw, now missing", "dev1", "dev1", "a.b~c_d-1", "rollback")
	// A device whose ledger never saw version 2 cannot tell (the limit
	// package zk's documentation states): what catches the rollback above
	// is device 1's ledger.
	n.fails("device 3, a record never seen", "clientGet", ixArgs{"client": "dev3", "vault": "dev1", "name": "a.b~c_d-1"}, "not_found")
	a := ixArgs{"client": "dev3", "vault": "dev1", "name": "notes"}
	if r := n.must("device 3 get notes", "clientGet", a); !bytes.Equal(r.plaintext(t), pt1) || r.Version != "1" {
		t.Errorf("device 3: notes at %s", r.Version)
	}
}

// TestInteropRotationThroughServer: Go rotates the master key of a vault
// the Client made (twice: key version 3, retired 1 and 2) and stores it;
// the Client unlocks it with a recovery key from the rotation, reads a
// record sealed at key version 1 through the retired keys, writes at key
// version 3 (Go opens it); when the server puts the key version 1 record
// back, the Client refuses it ("rollback").
func TestInteropRotationThroughServer(t *testing.T) {
	ctx := context.Background()
	s := newIxServer(t)
	n := startIxNode(t)
	const user = "rotating-user"
	login := "/login?user=" + url.QueryEscape(user)
	n.must("device 1", "client", ixArgs{"client": "dev1", "origin": s.url, "login": login, "base": "/zk", "ledger": "dev1"})
	created := n.must("createVault", "clientCreateVault", ixArgs{"client": "dev1", "vault": "dev1", "passphrase": ixPassJS, "recovery_keys": 1})
	put := ixArgs{"client": "dev1", "vault": "dev1", "name": "r", "plaintext_hex": hex.EncodeToString([]byte("at key version 1"))}
	if r := n.must("put at key version 1", "clientPut", put); r.Version != "1" {
		t.Fatalf("put: version %s", r.Version)
	}

	rec1 := s.blob(t, user, "/vault")
	v, store := ixVaultFrom(t, user, rec1.Data)
	var u *vault.Unlocked
	var keys []vault.RecoveryKey
	for range 2 {
		var err error
		if u, keys, err = v.RotateMasterKey(ctx, user, []byte(ixPassNFKC)); err != nil {
			t.Fatalf("Go: rotating the Client's vault: %v", err)
		}
		t.Cleanup(u.Lock)
	}
	if u.KeyVersion() != 3 || !slices.Equal(u.RetiredVersions(), []uint32{1, 2}) || len(keys) != 1 {
		t.Fatalf("Go: key version %d, retired %v, %d recovery keys", u.KeyVersion(), u.RetiredVersions(), len(keys))
	}
	if err := s.store.PutBlob(ctx, user, "/vault", ixRecord(t, store, user), rec1.Version); err != nil {
		t.Fatal(err)
	}

	r := n.must("unlock with the rotation's recovery key", "clientUnlock", ixArgs{"client": "dev1", "vault": "dev1", "recovery_key": keys[0].Reveal()})
	if fp := ixFingerprint(t, u); r.Fingerprint != fp || fp == created.Fingerprint || r.KeyVersion != 3 || !slices.Equal(r.Retired, []uint32{1, 2}) {
		t.Errorf("node: fingerprint %s, key version %d, retired %v; Go: %s, 3, [1 2]", r.Fingerprint, r.KeyVersion, r.Retired, fp)
	}
	g := n.must("get a record of key version 1", "clientGet", ixArgs{"client": "dev1", "vault": "dev1", "name": "r"})
	if string(g.plaintext(t)) != "at key version 1" || g.Version != "1" {
		t.Errorf("node read %q at %s", g.plaintext(t), g.Version)
	}
	put["plaintext_hex"] = hex.EncodeToString([]byte("at key version 3"))
	if r := n.must("put at key version 3", "clientPut", put); r.Version != "2" {
		t.Fatalf("put: version %s", r.Version)
	}
	b := s.blob(t, user, "r")
	if kv := binary.BigEndian.Uint32(b.Data[2:6]); kv != 3 {
		t.Errorf("the Client sealed at key version %d after the rotation", kv)
	}
	if pt, version, err := u.OpenVersion(b.Data, []byte("keyhold/zk/record/r"), 2); err != nil || string(pt) != "at key version 3" || version != 2 {
		t.Errorf("Go: the record the Client wrote after the rotation: %q %d %v", pt, version, err)
	}

	// The server puts the vault record of key version 1 back.
	cur := s.blob(t, user, "/vault")
	if err := s.store.PutBlob(ctx, user, "/vault", rec1.Data, cur.Version); err != nil {
		t.Fatal(err)
	}
	n.fails("a vault record of key version 1 after 3", "clientUnlock", ixArgs{"client": "dev1", "vault": "old", "passphrase": ixPassJS}, "rollback")
}
