package rediscluster_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/rediscluster"
	"github.com/keyhold/keyhold/internal/testenv"
)

// TestStartCluster starts 3 masters with a replica each, writes keys
// through a cluster client, counts them per master, fails one master
// over to its replica, and checks that Close removes everything.
//
// It takes about 6 s, so it runs in long mode only; a plain go test
// starts a cluster in package redisstore's short cluster test.
func TestStartCluster(t *testing.T) {
	if !testenv.Long() {
		t.Skip("long mode only (" + testenv.LongEnv + "=1): starting a cluster takes seconds")
	}
	start := time.Now()
	c := rediscluster.Start(t, 3, 1)
	t.Logf("3 masters + 3 replicas ready in %v", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()
	if n := len(c.Addrs()); n != 6 {
		t.Fatalf("%d nodes, want 6", n)
	}
	masters, err := c.Masters(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("Masters = %v, %v; want 3", masters, err)
	}
	for _, m := range masters {
		if r, err := c.Replicas(ctx, m); err != nil || len(r) != 1 {
			t.Errorf("Replicas(%s) = %v, %v; want 1", m, r, err)
		}
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rdb.Close()
	const keys = 300
	for i := range keys {
		if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	per, err := c.KeysPerMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for m, n := range per {
		total += n
		if n == 0 {
			t.Errorf("master %s holds no key", m)
		}
	}
	if total != keys {
		t.Errorf("masters hold %d keys, want %d (%v)", total, keys, per)
	}

	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	newMaster, err := c.Failover(fctx, masters[0])
	if err != nil {
		out, _ := exec.Command("sh", "-c", "tail -n 15 "+c.Dir()+"/*/redis.log").CombinedOutput()
		t.Fatalf("%v\n%s", err, out)
	}
	after, err := c.Masters(ctx)
	if err != nil || len(after) != 3 {
		t.Fatalf("Masters after failover = %v, %v", after, err)
	}
	found := false
	for _, m := range after {
		found = found || m == newMaster
		if m == masters[0] {
			t.Errorf("old master %s still serves slots", m)
		}
	}
	if !found {
		t.Errorf("new master %s not among %v", newMaster, after)
	}
	for i := range keys {
		if err := rdb.Get(ctx, fmt.Sprintf("k%d", i)).Err(); err != nil {
			t.Fatalf("key %d after failover: %v", i, err)
		}
	}
	dir := c.Dir()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s (%v)", dir, err)
	}
	for _, a := range c.Addrs() {
		if conn, err := net.Dial("tcp", a); err == nil {
			conn.Close()
			t.Errorf("node %s still listens after Close", a)
		}
	}
}
