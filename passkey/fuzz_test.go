package passkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keyhold/keyhold/storage"
)

// fuzzCredentialIDs walks data as FORMAT.md §7 lays a record out and
// returns the credential IDs it holds, as far as it can read them: the
// index a store would keep next to the record.
func fuzzCredentialIDs(data []byte) [][]byte {
	d := decoder{b: data}
	d.u8()
	n := int(d.u8())
	var ids [][]byte
	for i := 0; i < n && !d.err; i++ {
		id := d.bytes(int(d.u16()))
		d.bytes(int(d.u16())) // public key
		d.bytes(4 + 4 + 1)    // alg, signCount, flags
		for range int(d.u8()) {
			d.short() // transports
		}
		d.short() // attType
		d.short() // attFormat
		d.short() // aaguid
		d.bytes(16)
		d.short() // name
		d.short() // prfSalt
		if !d.err {
			ids = append(ids, id)
		}
	}
	return ids
}

// FuzzDecodeRecord: the stored passkey record decoder never panics,
// refuses with errMalformed only, and is canonical: what decodes
// re-encodes to the same bytes, within the store's bounds. The store's
// index of credential IDs must be exactly the record's IDs: any order is
// accepted, one missing or one extra is refused.
func FuzzDecodeRecord(f *testing.F) {
	doc, err := formatRecord().encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc, uint8(0))
	f.Add(doc, uint8(1))
	f.Add(doc, uint8(2))
	f.Add(doc[:len(doc)-1], uint8(0))
	f.Add(append(slices.Clone(doc), 0), uint8(0))
	one := formatRecord()
	one.creds = one.creds[1:]
	b, _ := one.encode()
	f.Add(b, uint8(0))
	f.Add([]byte{recordVersion, 0}, uint8(0))
	f.Add([]byte{recordVersion, storage.MaxPasskeysPerUser + 1}, uint8(0))
	f.Add([]byte{}, uint8(0))
	handle := bytes.Repeat([]byte{0x40}, storage.PasskeyHandleLen)
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		ids := fuzzCredentialIDs(data)
		if mode&1 == 1 {
			slices.Reverse(ids)
		}
		sr := storage.PasskeyRecord{UserID: "ada", Handle: handle, Version: 7, CredentialIDs: ids, Data: data}
		r, err := decodeRecord(sr)
		if err != nil {
			if !errors.Is(err, errMalformed) || r != nil {
				t.Fatalf("decodeRecord(%x) = %v, %v; want nil, errMalformed", data, r, err)
			}
			return
		}
		if len(r.creds) > storage.MaxPasskeysPerUser || len(data) > storage.MaxPasskeyDataLen {
			t.Fatalf("accepted %d credentials in %d bytes", len(r.creds), len(data))
		}
		again, err := r.storageRecord()
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if !bytes.Equal(again.Data, data) || r.userID != sr.UserID || r.version != sr.Version || !bytes.Equal(r.handle, handle) {
			t.Fatalf("decode(%x) re-encodes to %x", data, again.Data)
		}
		// The index must list the same IDs: drop one, or add one.
		if len(ids) > 0 && mode&2 == 2 {
			sr.CredentialIDs = ids[1:]
			if _, err := decodeRecord(sr); err == nil {
				t.Fatalf("decode(%x) accepted with an ID missing from the index", data)
			}
		}
		sr.CredentialIDs = append(slices.Clone(ids), []byte("not-in-the-record"))
		if _, err := decodeRecord(sr); err == nil && len(ids) < storage.MaxPasskeysPerUser {
			t.Fatalf("decode(%x) accepted with an extra ID in the index", data)
		}
		sr.CredentialIDs, sr.Handle = ids, handle[1:]
		if _, err := decodeRecord(sr); err == nil {
			t.Fatalf("decode(%x) accepted with a %d-byte handle", data, len(sr.Handle))
		}
	})
}

// fuzzCeremonyResponses returns the browser answers of the recorded
// ceremony (testdata/ceremony-passkey.json), by name.
func fuzzCeremonyResponses(f *testing.F) map[string][]byte {
	raw, err := os.ReadFile("testdata/ceremony-passkey.json")
	if err != nil {
		f.Fatal(err)
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(raw, &c); err != nil {
		f.Fatal(err)
	}
	out := map[string][]byte{}
	for name, v := range c {
		var step struct {
			Response json.RawMessage `json:"response"`
		}
		if json.Unmarshal(v, &step) == nil && len(step.Response) > 0 {
			out[name] = step.Response
		}
	}
	if out["registration"] == nil || out["login"] == nil {
		f.Fatalf("recorded ceremony: no registration or login answer (%d answers)", len(out))
	}
	return out
}

// FuzzParseAssertion: the browser's answer to navigator.credentials.get
// (client data, authenticator data, signature, PRF results) is bounded and
// parsed without panicking; every refusal is ErrInvalidResponse; an
// accepted answer has its client data and authenticator data parsed.
// Seeds: the recorded ceremony's assertions.
func FuzzParseAssertion(f *testing.F) {
	for name, resp := range fuzzCeremonyResponses(f) {
		if name != "registration" {
			f.Add(resp)
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"","rawId":"","type":"public-key","response":{}}`))
	f.Fuzz(func(t *testing.T, response []byte) {
		a, err := parseAssertion(response)
		if err != nil {
			if !errors.Is(err, ErrInvalidResponse) || a != nil {
				t.Fatalf("parseAssertion = %v, %v; want nil, ErrInvalidResponse", a, err)
			}
			return
		}
		if len(response) > MaxResponseLen || a.parsed == nil || a.parsed.Response.CollectedClientData.Type != protocol.AssertCeremony {
			t.Fatalf("accepted %d bytes without parsing them", len(response))
		}
		a.clearPRF()
	})
}

// FuzzParseRegistration: the parser FinishRegister runs on the browser's
// answer to navigator.credentials.create (attestation object, CBOR public
// key, client data), under the same MaxResponseLen bound, never panics.
// Seed: the recorded ceremony's registration.
func FuzzParseRegistration(f *testing.F) {
	f.Add(fuzzCeremonyResponses(f)["registration"])
	f.Add([]byte(`{"id":"","rawId":"","type":"public-key","response":{"attestationObject":"","clientDataJSON":""}}`))
	f.Fuzz(func(t *testing.T, response []byte) {
		if len(response) == 0 || len(response) > MaxResponseLen {
			return
		}
		parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
		if err == nil && parsed == nil {
			t.Fatal("no error and no parsed answer")
		}
	})
}

// FuzzDecodeID: a Credential.ID from the application decodes to 1 to
// storage.MaxCredentialIDLen bytes or is ErrNotFound, and every ID this
// package hands out (encodeID) decodes back to its bytes.
func FuzzDecodeID(f *testing.F) {
	f.Add("jzwbetLmRQmxwPfiWp1OO2wqHw6djHtqWUg3JhX049I")
	f.Add("AA")
	f.Add("AB")
	f.Add("")
	f.Add("A")
	f.Add("AAAA====")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := decodeID(s)
		if err != nil {
			if !errors.Is(err, ErrNotFound) || id != nil {
				t.Fatalf("decodeID(%q) = %x, %v; want nil, ErrNotFound", s, id, err)
			}
		} else {
			if len(id) == 0 || len(id) > storage.MaxCredentialIDLen {
				t.Fatalf("decodeID(%q): %d bytes", s, len(id))
			}
			// A second spelling of the same ID names the same passkey.
			if back, err := decodeID(encodeID(id)); err != nil || !bytes.Equal(back, id) {
				t.Fatalf("decodeID(%q) = %x, which does not round-trip", s, id)
			}
		}
		raw := []byte(s)
		if len(raw) > 0 && len(raw) <= storage.MaxCredentialIDLen {
			if back, err := decodeID(encodeID(raw)); err != nil || !bytes.Equal(back, raw) {
				t.Fatalf("encodeID(%x) does not decode back: %x, %v", raw, back, err)
			}
		}
	})
}
