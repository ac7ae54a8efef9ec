package redisstore_test

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/keyhold/keyhold/storage"
)

// This file holds an outside review's attacks on the factor record's
// compare-and-swap scripts (issue 12): versions past 2^53 (where Lua
// numbers lose precision), a value of another format or kind at the key,
// a key of another Redis type, and truncated values. Each must be refused
// (an error or ErrConflict), never overwritten or read as a record.

func factorValue(format, kind byte, version uint64, data string) string {
	b := []byte{format, kind}
	b = binary.BigEndian.AppendUint64(b, version)
	return string(append(b, data...))
}

// Versions are compared as their 8 bytes: 2^53 and 2^53+1, equal as Lua
// doubles, are told apart; the top version cannot be put over.
func TestAttackFactorVersionsPast2To53(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	user := "alice"
	key := e.prefix + "f:" + hex.EncodeToString([]byte(user))
	const big = uint64(1)<<53 + 1
	if err := e.rdb.Set(ctx, key, factorValue(1, 'f', big, "old"), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutFactors(ctx, user, []byte("x"), big-1); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("put expecting 2^53 over 2^53+1: %v, want ErrConflict", err)
	}
	if err := e.st.DeleteFactors(ctx, user, big-1); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("delete expecting 2^53 of 2^53+1: %v, want ErrConflict", err)
	}
	if err := e.st.PutFactors(ctx, user, []byte("new"), big); err != nil {
		t.Fatal(err)
	}
	r, err := e.st.GetFactors(ctx, user)
	if err != nil || r.Version != big+1 || string(r.Data) != "new" {
		t.Fatalf("after the put: %+v %v, want version 2^53+2", r, err)
	}
	if err := e.rdb.Set(ctx, key, factorValue(1, 'f', math.MaxUint64, "top"), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutFactors(ctx, user, []byte("wrap"), math.MaxUint64); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("put over the top version: %v, want ErrConflict", err)
	}
	if r, err := e.st.GetFactors(ctx, user); err != nil || string(r.Data) != "top" {
		t.Fatalf("the top record changed: %+v %v", r, err)
	}
}

// A value that is not a factor record (another format, another kind, a
// session's, truncated), or a key of another type, is neither read nor
// overwritten nor deleted.
func TestAttackFactorKeyHoldsSomethingElse(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	user := "alice"
	key := e.prefix + "f:" + hex.EncodeToString([]byte(user))
	values := map[string]string{
		"format 2":     factorValue(2, 'f', 1, "x"),
		"format 0":     factorValue(0, 'f', 1, "x"),
		"kind s":       factorValue(1, 's', 1, "x"),
		"truncated":    factorValue(1, 'f', 1, "")[:9],
		"empty string": "",
	}
	for name, v := range values {
		if err := e.rdb.Set(ctx, key, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.GetFactors(ctx, user); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: GetFactors %v, want an error", name, err)
		}
		for _, expect := range []uint64{0, 1} {
			if err := e.st.PutFactors(ctx, user, []byte("new"), expect); err == nil {
				t.Errorf("%s: PutFactors(expect %d) overwrote it", name, expect)
			}
			if err := e.st.DeleteFactors(ctx, user, expect); err == nil && expect != 0 {
				t.Errorf("%s: DeleteFactors(expect %d) deleted it", name, expect)
			}
		}
		if got, err := e.rdb.Get(ctx, key).Result(); err != nil || got != v {
			t.Errorf("%s: the value changed: %q %v", name, got, err)
		}
	}
	// Other Redis types at the key.
	for name, set := range map[string]func() error{
		"hash": func() error { return e.rdb.HSet(ctx, key, "a", "b").Err() },
		"list": func() error { return e.rdb.RPush(ctx, key, "a").Err() },
		"set":  func() error { return e.rdb.SAdd(ctx, key, "a").Err() },
	} {
		if err := e.rdb.Del(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
		if err := set(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.GetFactors(ctx, user); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: GetFactors %v, want an error", name, err)
		}
		if err := e.st.PutFactors(ctx, user, []byte("new"), 0); err == nil {
			t.Errorf("%s: PutFactors overwrote it", name)
		}
		if err := e.st.DeleteFactors(ctx, user, 1); err == nil {
			t.Errorf("%s: DeleteFactors deleted it", name)
		}
		if typ, err := e.rdb.Type(ctx, key).Result(); err != nil || typ != name {
			t.Errorf("%s: the key is now %q (%v)", name, typ, err)
		}
	}
}
