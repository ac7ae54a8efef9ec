package redisstore_test

import (
	"os"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
)

// TestMain says, in one line, when the tests that need Redis skip because
// KEYHOLD_TEST_REDIS_URL is unset (in CI they fail instead).
func TestMain(m *testing.M) {
	testenv.ServiceMain("redisstore", redisEnv, "Redis")
	os.Exit(m.Run())
}
