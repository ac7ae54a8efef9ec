package zk_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// nodeTestTimeout bounds one run of the client's unit tests (about 7 s
// on one core of a laptop).
const nodeTestTimeout = 3 * time.Minute

// TestClientUnderNode runs client.js's unit tests
// (testdata/client_test.mjs: FORMAT.md §3's vectors, the record decoder,
// every operation's round trip, the Client against a fake server) with
// Node's test runner. It skips, or fails when CI=true, without Node 20 or
// later (WebCrypto on globalThis, String.prototype.isWellFormed).
func TestClientUnderNode(t *testing.T) {
	t.Parallel()
	node := testenv.Node(t)
	ctx, cancel := context.WithTimeout(t.Context(), nodeTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "testdata/client_test.mjs")
	cmd.WaitDelay = 5 * time.Second
	b, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test testdata/client_test.mjs did not finish within %v:\n%s", nodeTestTimeout, b)
	}
	if err != nil {
		t.Fatalf("node --test testdata/client_test.mjs: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "fail 0") {
		t.Fatalf("node --test testdata/client_test.mjs: no \"fail 0\" in its report:\n%s", b)
	}
	t.Logf("%s", lastLines(string(b), 9))
}

// lastLines returns the last n lines of s (node's summary).
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
