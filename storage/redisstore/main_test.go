package redisstore_test

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/rediscluster"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestMain says, in one line, when the tests that need Redis skip because
// KEYHOLD_TEST_REDIS_URL is unset (in CI they fail instead), and stops the
// Redis Cluster that the cluster tests share, if one was started.
func TestMain(m *testing.M) {
	testenv.ServiceMain("redisstore", redisEnv, "Redis")
	// go-redis logs each failed dial of its pools: the failover test kills
	// a node on purpose, and its calls' errors are what it checks.
	redis.SetLogger(quiet{})
	code := m.Run()
	if shared.c != nil {
		shared.c.Close()
	}
	os.Exit(code)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// shared is the one Redis Cluster (3 masters, 1 replica each) that the
// cluster tests of this package share, started by the first of them: one
// start (a few seconds) for the whole run.
var shared struct {
	once sync.Once
	c    *rediscluster.Cluster
	err  error
}

// sharedCluster returns the package's cluster, starting it on first use.
// It skips (fails in CI) when redis-server or redis-cli is missing. Tests
// that fail nodes over must start a cluster of their own.
func sharedCluster(t *testing.T) *rediscluster.Cluster {
	t.Helper()
	for _, tool := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, tool+" not found (apt-get install redis-server redis-tools)")
		}
	}
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.c, shared.err = rediscluster.StartCluster(ctx, "", 3, 1)
	})
	if shared.err != nil {
		t.Fatalf("starting a Redis Cluster: %v", shared.err)
	}
	return shared.c
}
