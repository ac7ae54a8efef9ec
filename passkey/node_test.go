package passkey

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

// TestClientPRFInputsUnderNode runs testdata/client_prf_test.mjs: the
// browser module asks the authenticator with its own PRF inputs
// (FORMAT.md §7.3), never the server's salts as they are, and a sign-in
// asks for none; keepPRF sends no output. It skips, or fails when
// CI=true, without Node 20 or later.
func TestClientPRFInputsUnderNode(t *testing.T) {
	node := testenv.Node(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "testdata/client_prf_test.mjs")
	cmd.WaitDelay = 5 * time.Second
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "# fail 0") {
		t.Fatalf("node --test testdata/client_prf_test.mjs: %v\n%s", err, b)
	}
}
