package redisstore_test

import (
	"encoding/hex"
	"testing"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// TestFactorConformance runs the storagetest clauses of FactorStore, each
// clause with a prefix of its own.
func TestFactorConformance(t *testing.T) {
	redisURL(t) // one skip (or failure in CI) rather than one per clause
	storagetest.RunFactorStore(t, func(t *testing.T) storage.FactorStore { return newEnv(t).st })
}

// A factor record lives at prefix+"f:"+hex(user ID), with no TTL (it must
// not expire like a session), and its delete removes the key.
func TestFactorKeyAndNoTTL(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	user := "Alice \x00é"
	key := e.prefix + "f:" + hex.EncodeToString([]byte(user))
	if err := e.st.PutFactors(ctx, user, []byte("sealed"), 0); err != nil {
		t.Fatal(err)
	}
	ttl, err := e.rdb.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl != -1 {
		t.Errorf("PTTL of %q: %v, want -1 (a key with no TTL)", key, ttl)
	}
	if err := e.st.DeleteFactors(ctx, user, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := e.rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS %q after the delete: %d, %v; want 0", key, n, err)
	}
}
