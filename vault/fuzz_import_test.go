package vault

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fernet/fernet-go"

	"github.com/keyhold/keyhold/internal/vectors"
)

// fuzzVectorRecords returns every vault record (hex strings starting with
// the record magic) found in the checked-in vector files.
func fuzzVectorRecords(f testing.TB) [][]byte {
	var out [][]byte
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if b, err := hex.DecodeString(x); err == nil && bytes.HasPrefix(b, []byte("KHV")) {
				out = append(out, b)
			}
		}
	}
	for _, name := range []string{"testdata/vault_vectors.json", "testdata/secret_slot_vectors.json"} {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			f.Fatal(err)
		}
		walk(v)
	}
	if len(out) < 2 {
		f.Fatalf("only %d vault records in the vector files", len(out))
	}
	return out
}

// FuzzRecordKeyVersion: the check package zk's server runs on a client's
// vault upload never panics, refuses with ErrInvalidRecord only, and
// accepts exactly what decodeRecord accepts, reporting its key version;
// a record's slots' parameters (passphrase: KDF parameters and salt;
// secret: salt) decode or are refused without panicking, and what
// decodes re-encodes to the same bytes.
func FuzzRecordKeyVersion(f *testing.F) {
	for _, r := range fuzzVectorRecords(f) {
		f.Add(r)
	}
	f.Add([]byte("KHV"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kv, err := RecordKeyVersion(data)
		r, derr := decodeRecord(data)
		if (err == nil) != (derr == nil) {
			t.Fatalf("RecordKeyVersion: %v; decodeRecord: %v", err, derr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) || kv != 0 {
				t.Fatalf("RecordKeyVersion = %d, %v; want 0, ErrInvalidRecord", kv, err)
			}
			return
		}
		if kv != r.keyVersion {
			t.Fatalf("key version %d, record says %d", kv, r.keyVersion)
		}
		for i := range r.slots {
			s := &r.slots[i]
			switch s.kind {
			case SlotPassphrase:
				p, salt, err := decodePassphraseParams(s.params)
				if err == nil && !bytes.Equal(encodePassphraseParams(p, salt), s.params) {
					t.Fatalf("slot %d: passphrase parameters %x re-encode differently", i, s.params)
				}
			default:
				if salt, ok := secretParams(s); ok && (len(salt) != secretSaltLen || !bytes.Equal(s.params[1:], salt)) {
					t.Fatalf("slot %d: secret salt %x from %x", i, salt, s.params)
				}
			}
		}
	})
}

// FuzzDecodePassphraseParams: a passphrase slot's KDF parameters decode
// without panicking, refuse with errMalformed, never yield a salt above
// maxSaltLen, and re-encode to the same bytes.
func FuzzDecodePassphraseParams(f *testing.F) {
	for _, r := range fuzzVectorRecords(f) {
		if rec, err := decodeRecord(r); err == nil {
			for _, s := range rec.slots {
				if s.kind == SlotPassphrase {
					f.Add(s.params)
					f.Add(s.params[:len(s.params)-1])
					f.Add(append(bytes.Clone(s.params), 0))
				}
			}
		}
	}
	f.Add([]byte{algArgon2id, 0, 0, 0, 2, 0, 0, 0x4c, 0, 1, 0, 0, 0, 0, 16})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, salt, err := decodePassphraseParams(b)
		if err != nil {
			if !errors.Is(err, errMalformed) || salt != nil {
				t.Fatalf("decodePassphraseParams(%x) = %x, %v", b, salt, err)
			}
			return
		}
		if len(salt) > maxSaltLen || p.SaltLen != len(salt) || p.KeyLen != masterKeyLen {
			t.Fatalf("decodePassphraseParams(%x): salt of %d bytes, params %+v", b, len(salt), p)
		}
		if got := encodePassphraseParams(p, salt); !bytes.Equal(got, b) {
			t.Fatalf("decodePassphraseParams(%x) re-encodes to %x", b, got)
		}
	})
}

// fuzzFernetVectors returns the fernet/spec vectors of one file.
func fuzzFernetVectors(f *testing.F, name, sha string) []fernetVector {
	var vs []fernetVector
	vectors.Load(f, "testdata/vectors/"+name, sha, &vs)
	if len(vs) == 0 {
		f.Fatalf("%s: no vectors", name)
	}
	return vs
}

// FuzzOpenFernetVectors: opening an arbitrary token at an arbitrary time and TTL
// never panics and fails with ErrDecrypt only; a token that opens is
// canonical: sealing its plaintext again with its own IV and timestamp
// gives back exactly the token (one spelling per token, no ignored bits,
// no padding PKCS #7 forbids), and its timestamp passes the time checks.
// Seeds: the fernet/spec vectors (generate, verify, invalid).
func FuzzOpenFernetVectors(f *testing.F) {
	var secret string
	for _, v := range fuzzFernetVectors(f, "fernet_verify.json", fernetVerifySHA) {
		now, _ := time.Parse(time.RFC3339, v.Now)
		f.Add(v.Token, now.Unix(), int64(v.TTLSec))
		f.Add(v.Token, now.Unix(), int64(0))
		f.Add(v.Token, now.Unix()+int64(v.TTLSec)+1, int64(v.TTLSec))
		secret = v.Secret
		// Other spellings of the same bytes: an unused bit of the last
		// character set, the padding dropped, a line break inside.
		if i := strings.IndexByte(v.Token, '='); i > 0 {
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			c := strings.IndexByte(alphabet, v.Token[i-1])
			f.Add(v.Token[:i-1]+string(alphabet[c^1])+v.Token[i:], now.Unix(), int64(v.TTLSec))
			f.Add(v.Token[:i], now.Unix(), int64(v.TTLSec))
		}
		f.Add(v.Token[:20]+"\n"+v.Token[20:], now.Unix(), int64(v.TTLSec))
	}
	for _, v := range fuzzFernetVectors(f, "fernet_invalid.json", fernetInvalidSHA) {
		now, _ := time.Parse(time.RFC3339, v.Now)
		f.Add(v.Token, now.Unix(), int64(v.TTLSec))
	}
	for _, v := range fuzzFernetVectors(f, "fernet_generate.json", fernetGenerateSHA) {
		now, _ := time.Parse(time.RFC3339, v.Now)
		f.Add(v.Token, now.Unix(), int64(0))
		if v.Secret != secret {
			f.Fatal("the vector files use different keys")
		}
	}
	k, err := fernet.DecodeKey(secret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string, nowUnix, ttlSec int64) {
		now := time.Unix(nowUnix%(1<<40), 0)
		ttl := time.Duration(ttlSec%(1<<30)) * time.Second
		pt, err := openFernetAt(k, []byte(token), ttl, now)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || pt != nil {
				t.Fatalf("openFernetAt(%q) = %q, %v; want nil, ErrDecrypt", token, pt, err)
			}
			return
		}
		raw, err := fernetB64.DecodeString(token)
		if err != nil || len(raw) < fernetMinLen {
			t.Fatalf("opened %q, which is not a token: %v", token, err)
		}
		ts := binary.BigEndian.Uint64(raw[fernetTSOff:])
		if !fernetTimeOK(ts, ttl, now) {
			t.Fatalf("opened %q with timestamp %d at %d, TTL %v", token, ts, now.Unix(), ttl)
		}
		again := sealFernetAt(k, raw[fernetTSOff+8:fernetTSOff+8+16], time.Unix(int64(ts), 0), pt)
		if string(again) != token {
			t.Fatalf("opened %q, which re-seals as %q", token, again)
		}
	})
}

// FuzzParseFernetCredentials: the credentials file of the Fernet import
// is read within MaxFernetCredentialsLen, never panics, refuses with
// ErrInvalidInput only, and what it accepts has a salt of the right
// length and at least one token; opening its tokens with a key that did
// not seal them fails with ErrUnlockFailed (and never panics).
// Seed: testdata/fernet_credentials.json, made by Python's cryptography.
func FuzzParseFernetCredentials(f *testing.F) {
	good, err := os.ReadFile("testdata/fernet_credentials.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"version": "1.0"`), []byte(`"version": 1`), 1))
	f.Add(bytes.Replace(good, []byte(`true`), []byte(`false`), 1))
	f.Add([]byte(`{"encrypted":true,"version":"1.0","salt":"AAAAAAAAAAAAAAAAAAAAAA==","email":"","password":""}`))
	f.Add([]byte(`{"encrypted":true,"version":"1.0","salt":"AAAAAAAAAAAAAAAAAAAAAB==","email":"x","password":"y"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(strings.Repeat(" ", MaxFernetCredentialsLen+1)))
	k, err := fernet.DecodeKey("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		salt, tokens, err := parseFernetCredentials(bytes.NewReader(file))
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) || salt != nil {
				t.Fatalf("parseFernetCredentials = %x, %v; want nil, ErrInvalidInput", salt, err)
			}
			return
		}
		if len(file) > MaxFernetCredentialsLen || len(salt) != fernetImportSaltLen || tokens == [len(tokens)]string{} {
			t.Fatalf("accepted a %d-byte file, salt of %d bytes, tokens %q", len(file), len(salt), tokens)
		}
		values, err := openFernetCredentials(k, tokens, time.Unix(1_800_000_000, 0))
		if err == nil {
			for _, v := range values {
				if len(v) != 0 {
					t.Fatalf("tokens %q opened under the wrong key", tokens)
				}
			}
		} else if !errors.Is(err, ErrUnlockFailed) || values != nil {
			t.Fatalf("openFernetCredentials = %q, %v; want nil, ErrUnlockFailed", values, err)
		}
	})
}
