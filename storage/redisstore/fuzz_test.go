package redisstore

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeRecord: a session or refresh-family value read from Redis
// decodes without panicking (no Redis needed: the decoder is pure); a
// refusal says what is malformed and never quotes the value; what decodes
// has a user ID (and a session a version of at least 1) and re-encodes to the same bytes (a session written with
// version 0, before sessions had versions, reads as version 1; that is
// the one difference allowed), so a truncated or extended value is
// refused.
func FuzzDecodeRecord(f *testing.F) {
	exp := time.Unix(1767225600, 123456789)
	for _, kind := range []byte{kindSession, kindRefresh} {
		for _, v := range [][]byte{
			encodeRecord(kind, 1, exp, "alice", []byte("session data")),
			encodeRecord(kind, 1<<40, exp, strings.Repeat("u", 255), nil),
			encodeRecord(kind, 0, time.Unix(1, 0), "u", bytes.Repeat([]byte{0xff}, 300)),
		} {
			f.Add(kind == kindRefresh, v)
			f.Add(kind == kindRefresh, v[:len(v)-1])
			f.Add(kind == kindRefresh, append(v, 0))
			f.Add(kind != kindRefresh, v)
		}
	}
	f.Add(false, []byte{recordFormat, kindSession})
	f.Add(false, []byte{})
	f.Fuzz(func(t *testing.T, refresh bool, v []byte) {
		kind := byte(kindSession)
		if refresh {
			kind = kindRefresh
		}
		r, err := decodeRecord(kind, string(v))
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "redisstore: malformed ") || len(msg) > 64 {
				t.Fatalf("decodeRecord error %q", msg)
			}
			return
		}
		if r.userID == "" || r.expires.Nanosecond() >= 1e9 || (kind == kindSession && r.version == 0) {
			t.Fatalf("decodeRecord(%x) = %+v", v, r)
		}
		again := encodeRecord(kind, r.version, r.expires, r.userID, r.data)
		if kind == kindSession && r.version == 1 && !bytes.Equal(again, v) {
			again = encodeRecord(kind, 0, r.expires, r.userID, r.data)
		}
		if !bytes.Equal(again, v) {
			t.Fatalf("decodeRecord(%x) re-encodes to %x", v, again)
		}
		if len(r.data) > 0 {
			r.data[0] ^= 1 // the data is a copy: v is unchanged
			if bytes.Equal(again, encodeRecord(kind, r.version, r.expires, r.userID, r.data)) {
				t.Fatal("decoded data aliases the value")
			}
		}
	})
}

// FuzzDecodeFactors: a factor record read from Redis decodes without
// panicking, never with version 0, refuses without quoting the value, and
// re-encodes to the same bytes.
func FuzzDecodeFactors(f *testing.F) {
	for _, v := range [][]byte{encodeFactors(1, []byte("factors")), encodeFactors(1<<63, nil), encodeFactors(0, []byte("x"))} {
		f.Add(v)
		f.Add(v[:len(v)-1])
		f.Add(append(v, 0))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		version, data, err := decodeFactors(string(v))
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "redisstore: malformed factor record") || len(msg) > 64 || data != nil {
				t.Fatalf("decodeFactors error %q, data %x", msg, data)
			}
			return
		}
		if version == 0 {
			t.Fatalf("decodeFactors(%x): version 0", v)
		}
		if again := encodeFactors(version, data); !bytes.Equal(again, v) {
			t.Fatalf("decodeFactors(%x) re-encodes to %x", v, again)
		}
	})
}
