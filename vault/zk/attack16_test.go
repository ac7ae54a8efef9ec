package zk_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/keyhold/keyhold/kdf"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/vault"
	"github.com/keyhold/keyhold/vault/zk"
)

// Issue 16, zero-knowledge mode: someone who writes the blob store (a
// hostile or compromised server) moves alice's blobs into carol's rows
// and puts back an older copy of a record. The server cannot tell (it
// holds no key): the client refuses what was moved (the user ID is in
// every associated data) and what is older than the version it
// remembers. A Go client plays the browser (package vault seals exactly as
// client.js does; the browser's own ledger is tested by
// testdata/client_test.mjs, "rollback: …", run by TestClientUnderNode).

// attack16Put stores data as the user's blob name directly in the store,
// at the next version: the attacker's write, past the server's checks.
func attack16Put(t *testing.T, e *serverEnv, user, name string, data []byte) {
	t.Helper()
	ctx := context.Background()
	b, err := e.store.GetBlob(ctx, user, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutBlob(ctx, user, name, data, b.Version); err != nil {
		t.Fatal(err)
	}
}

// TestAttack16ZKSwapBetweenUsers: alice's record and vault record put in
// carol's rows are served to carol (the server cannot check them) and do
// not open there: carol's vault opens neither the record nor, from
// alice's vault record, any vault at all with the passphrase both share.
func TestAttack16ZKSwapBetweenUsers(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	aliceVault, alice := testVault(t, "alice")
	carolVault, carol := testVault(t, "carol") // the same passphrase as alice's
	a, c := e.login("alice", false), e.login("carol", false)
	for _, step := range []struct {
		who  *client
		path string
		body []byte
	}{
		{a, "/vault", aliceVault}, {c, "/vault", carolVault},
		{a, "/records/diary", sealAt(t, alice, "diary", "alice's diary", 1)},
		{c, "/records/diary", sealAt(t, carol, "diary", "carol's diary", 1)},
	} {
		if got := step.who.do("PUT", step.path, step.body, 0, ""); got.status != 200 {
			t.Fatalf("PUT %s: %d %s", step.path, got.status, got.body)
		}
	}
	aliceRecord := a.do("GET", "/records/diary", nil, -1, "").body
	attack16Put(t, e, "carol", "diary", aliceRecord)
	attack16Put(t, e, "carol", "/vault", aliceVault)

	got := c.do("GET", "/records/diary", nil, -1, "")
	if got.status != 200 || string(got.body) != string(aliceRecord) {
		t.Fatalf("carol's GET: %d; the server should serve what its store holds", got.status)
	}
	if _, _, err := carol.OpenVersion(got.body, []byte("keyhold/zk/record/diary"), 0); !errors.Is(err, vault.ErrDecrypt) {
		t.Errorf("alice's record opened as carol's: %v, want ErrDecrypt", err)
	}
	served := c.do("GET", "/vault", nil, -1, "").body
	clientSide := memstore.New()
	if err := clientSide.PutVault(context.Background(), "carol", served, 0); err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(clientSide, vault.Config{KDF: kdf.InteractiveParams()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Unlock(context.Background(), "carol", []byte("correct horse battery staple")); !errors.Is(err, vault.ErrUnlockFailed) {
		t.Errorf("alice's vault record unlocked as carol's with the shared passphrase: %v, want ErrUnlockFailed", err)
	}
}

// TestAttack16ZKRecordRollback: through the server, an older record is
// refused as a newer version (the record's version is authenticated
// inside it). Written straight into the store at the next version, the
// older record is served (not caught by the server: it holds no key),
// and refused by a client that remembers the version it saw
// (ErrRollback); a client that remembers nothing (minimum 0) reads it:
// not caught, as SECURITY.md says ("Live server", zero knowledge).
func TestAttack16ZKRecordRollback(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	_, u := testVault(t, "alice")
	a := e.login("alice", false)
	v1, v2 := sealAt(t, u, "diary", "first", 1), sealAt(t, u, "diary", "second", 2)
	for i, step := range []struct {
		body   []byte
		expect int64
		status int
	}{{v1, 0, 200}, {v2, 1, 200}, {v1, 2, 400}} {
		if got := a.do("PUT", "/records/diary", step.body, step.expect, ""); got.status != step.status {
			t.Fatalf("PUT %d (expect %d): %d, want %d", i, step.expect, got.status, step.status)
		}
	}
	attack16Put(t, e, "alice", "diary", v1)
	got := a.do("GET", "/records/diary", nil, -1, "")
	if got.status != 200 || got.version != strconv.Itoa(3) || string(got.body) != string(v1) {
		t.Fatalf("the rolled-back record: %d version %q; the server should serve it as version 3", got.status, got.version)
	}
	rc := []byte("keyhold/zk/record/diary")
	if _, ver, err := u.OpenVersion(got.body, rc, 2); !errors.Is(err, vault.ErrRollback) || ver != 1 {
		t.Errorf("a client that saw version 2: %v (version %d), want ErrRollback", err, ver)
	}
	if pt, _, err := u.OpenVersion(got.body, rc, 0); err != nil || string(pt) != "first" {
		t.Errorf("NOT CAUGHT by design: a client that remembers nothing reads the older record: %q, %v", pt, err)
	}
}
