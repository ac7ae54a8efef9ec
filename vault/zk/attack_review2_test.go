package zk_test

// A second outside review's attacks: the runner of
// testdata/attack_review2_test.mjs (the browser client's rollback ledger
// against honest failures, two tabs and hostile stored values), and
// attacks on what changed in zk.Server (blob name = record name, a status
// of live records only). TestAttackHeld2* are attacks that failed, kept
// as regression tests. The .mjs file's "finding N" tests showed defects
// fixed since (regression tests now), its "fix N" tests the other
// outcomes of those fixes.

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/ratelimit"
	"github.com/keyhold/keyhold/vault/zk"
)

// TestAttackReview2UnderNode runs testdata/attack_review2_test.mjs with
// Node's test runner.
func TestAttackReview2UnderNode(t *testing.T) {
	t.Parallel()
	node := testenv.Node(t)
	ctx, cancel := context.WithTimeout(t.Context(), nodeTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "testdata/attack_review2_test.mjs")
	cmd.WaitDelay = nodeTestTimeout / 36
	b, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test testdata/attack_review2_test.mjs did not finish within %v:\n%s", nodeTestTimeout, b)
	}
	if err != nil || !strings.Contains(string(b), "fail 0") {
		t.Fatalf("node --test testdata/attack_review2_test.mjs: %v\n%s", err, b)
	}
	t.Logf("%s", lastLines(string(b), 9))
}

// TestAttackHeld2RecordNamesAndTheVault: now that a record's blob name is
// its name, no record name reaches the vault's blob ("/vault"): an
// escaped slash in the path is decoded by the mux and refused by
// checkName; "vault" and its look-alikes are records of their own. The
// status lists live records only, and a tombstone is not a vault.
func TestAttackHeld2RecordNamesAndTheVault(t *testing.T) {
	e := newServerEnv(t, zk.Config{}, ratelimit.Rule{})
	alice := e.login("alice", false)
	rec, u := testVault(t, "alice")
	for _, p := range []string{"/records/%2Fvault", "/records/%2fvault", "/records/..%2Fvault", "/records/%2E%2E%2Fvault"} {
		if a := alice.do("PUT", p, sealAt(t, u, "/vault", "x", 1), 0, ""); a.status == http.StatusOK {
			t.Errorf("PUT %s: %d: a record name with a slash was stored", p, a.status)
		}
	}
	for _, n := range []string{"vault", "-vault", ".vault", "_vault", "~vault", "Vault"} {
		if a := alice.do("PUT", "/records/"+n, sealAt(t, u, n, "x", 1), 0, ""); a.status != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", n, a.status, a.body)
		}
	}
	if a := alice.do("DELETE", "/records/vault", nil, 1, ""); a.status != http.StatusOK {
		t.Fatalf("DELETE vault: %d %s", a.status, a.body)
	}
	st := alice.do("GET", "/", nil, -1, "").json(t)
	if st["vault"] != nil {
		t.Errorf("records alone made a vault: %v", st["vault"])
	}
	if a := alice.do("GET", "/vault", nil, -1, ""); a.status != http.StatusNotFound {
		t.Errorf("GET /vault with records named like it: %d", a.status)
	}
	names := map[string]bool{}
	for _, r := range st["records"].([]any) {
		names[r.(map[string]any)["name"].(string)] = true
	}
	if names["vault"] || len(names) != 5 {
		t.Errorf("the status lists %v: want the 5 live records, not the tombstone", names)
	}
	// The vault, written now, is untouched by the records.
	if a := alice.do("PUT", "/vault", rec, 0, ""); a.status != http.StatusOK {
		t.Fatalf("PUT /vault: %d %s", a.status, a.body)
	}
	if a := alice.do("PUT", "/records/vault", sealAt(t, u, "vault", "y", 3), 2, ""); a.status != http.StatusOK {
		t.Fatalf("PUT vault again: %d %s", a.status, a.body)
	}
	if a := alice.do("GET", "/vault", nil, -1, ""); a.status != http.StatusOK || a.version != "1" || string(a.body) != string(rec) {
		t.Errorf("the vault after writes of a record named vault: %d version %q", a.status, a.version)
	}
}
