// Package rediscluster starts a throw-away Redis Cluster on this machine's
// loopback interface, for tests and benchmarks: a number of masters, each
// with a number of replicas, every node a redis-server process of its own
// on ports chosen free at run time, with its data in a directory that
// Close removes.
//
// From a test, [Start] does everything (it skips, or fails in CI, when
// redis-server or redis-cli is missing, and stops the cluster at the
// test's cleanup):
//
//	c := rediscluster.Start(t, 3, 1) // 3 masters, 1 replica each
//	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
//
// From a main program (a benchmark), [StartCluster] does the same and
// returns an error instead; the caller closes the cluster:
//
//	c, err := rediscluster.StartCluster(ctx, dir, 3, 1)
//	if err != nil { ... }
//	defer c.Close()
//
// The cluster is created with redis-cli --cluster create (slots spread
// evenly over the masters), and is ready when every node reports
// cluster_state:ok and agrees on who serves every slot. Nodes keep nothing
// on disk (no RDB, no AOF) besides their cluster configuration files, and
// listen on 127.0.0.1 only. A cluster needs Redis 7.0 or later (each node's
// bus port is set with cluster-port).
//
// There is no runnable Example: it would need redis-server, and examples
// run in every plain go test.
package rediscluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
)

// NodeTimeout is the cluster-node-timeout of every node: how long a master
// may be unreachable before its replicas may take over.
const NodeTimeout = 2 * time.Second

// A Cluster is a running Redis Cluster started by [StartCluster] or
// [Start]. Its methods are safe for concurrent use.
type Cluster struct {
	dir     string // removed by Close
	addrs   []string
	mu      sync.Mutex
	procs   map[string]*exec.Cmd
	done    map[string]chan struct{}
	closeMu sync.Once
}

// Start starts a cluster of masters masters with replicasPerMaster
// replicas each, for the test t, in a temporary directory of its own, and
// stops it (kills its processes, removes the directory) at t's cleanup.
// It calls testenv.Missing (a skip, or a failure in CI) when redis-server
// or redis-cli is not installed, and fails t when the cluster does not
// start. It returns the cluster; Addrs lists its nodes' addresses and
// Close stops it sooner.
func Start(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	testenv.LookPath(t, "redis-server", "apt-get install redis-server")
	testenv.LookPath(t, "redis-cli", "apt-get install redis-tools")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, "", masters, replicasPerMaster)
	if err != nil {
		t.Fatalf("rediscluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("rediscluster: %v", err)
		}
	})
	return c
}

// StartCluster starts a cluster of masters masters (at least 3, Redis
// Cluster's minimum) with replicasPerMaster replicas each (0 or more), on
// free loopback ports, and waits until it is ready or ctx ends. The nodes
// keep their files in a new directory under dir (the system's temporary
// directory when dir is ""), which Close removes; dir itself stays. On
// error, every process started is stopped and the directory removed.
func StartCluster(ctx context.Context, dir string, masters, replicasPerMaster int) (*Cluster, error) {
	if masters < 3 {
		return nil, fmt.Errorf("a cluster needs at least 3 masters, not %d", masters)
	}
	if replicasPerMaster < 0 {
		return nil, fmt.Errorf("negative replicas per master (%d)", replicasPerMaster)
	}
	server, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, err
	}
	c := &Cluster{procs: map[string]*exec.Cmd{}, done: map[string]chan struct{}{}}
	d, err := os.MkdirTemp(dir, "rediscluster-") // dir "": the system's
	if err != nil {
		return nil, err
	}
	c.dir = d
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	n := masters * (1 + replicasPerMaster)
	for i := range n {
		if err := c.startNode(ctx, server, i); err != nil {
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, c.addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, lastLines(string(out), 5))
	}
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// startNode starts node i on two free ports (client and cluster bus) and
// waits until it answers PING. A port taken between the check and the
// server's bind makes the server exit: the node is then tried again on
// other ports, a few times.
func (c *Cluster) startNode(ctx context.Context, server string, i int) error {
	var last error
	for range 5 {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		ndir := filepath.Join(c.dir, strconv.Itoa(ports[0]))
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			return err
		}
		cmd := exec.Command(server,
			"--bind", "127.0.0.1",
			"--port", strconv.Itoa(ports[0]),
			"--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(ports[1]),
			"--cluster-config-file", filepath.Join(ndir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(NodeTimeout.Milliseconds(), 10),
			"--dir", ndir,
			"--save", "",
			"--appendonly", "no",
			"--repl-diskless-sync-delay", "0",
			"--protected-mode", "no",
			"--daemonize", "no",
			"--logfile", filepath.Join(ndir, "redis.log"),
		)
		cmd.Stdout, cmd.Stderr = nil, nil
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		c.mu.Lock()
		c.procs[addr], c.done[addr] = cmd, done
		c.mu.Unlock()
		if last = waitPing(ctx, addr, done); last == nil {
			c.addrs = append(c.addrs, addr)
			return nil
		}
		c.Kill(addr)
		if ctx.Err() != nil {
			return last
		}
	}
	return fmt.Errorf("node %d did not start: %w", i, last)
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a
// moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func waitPing(ctx context.Context, addr string, exited <-chan struct{}) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited: %w", addr, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s does not answer: %w", addr, err)
		}
	}
}

// Addrs returns the addresses ("127.0.0.1:port") of every node started,
// masters and replicas, in the order they were started, whether or not
// they still run. Give them (or any one of them) to
// redis.ClusterOptions.Addrs.
func (c *Cluster) Addrs() []string { return slices.Clone(c.addrs) }

// Dir returns the directory holding the nodes' files (logs, nodes.conf).
func (c *Cluster) Dir() string { return c.dir }

// A Node is one node of the cluster as its peers see it.
type Node struct {
	Addr   string // "127.0.0.1:port"
	ID     string // the node's cluster ID
	Master bool   // it serves slots (or is a master without slots)
	Of     string // for a replica, its master's ID
	Slots  int    // for a master, the number of slots it serves
	Failed bool   // flagged fail or pfail by the node asked
}

// Nodes returns the cluster's nodes as one running node sees them (CLUSTER
// NODES), masters first, each group by address.
func (c *Cluster) Nodes(ctx context.Context) ([]Node, error) {
	var last error
	for _, addr := range c.running() {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		s, err := rdb.ClusterNodes(ctx).Result()
		rdb.Close()
		if err != nil {
			last = err
			continue
		}
		return parseNodes(s)
	}
	if last == nil {
		last = errors.New("no node is running")
	}
	return nil, last
}

func parseNodes(s string) ([]Node, error) {
	var nodes []Node
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		flags := f[2]
		n := Node{
			Addr:   addr,
			ID:     f[0],
			Master: strings.Contains(flags, "master"),
			Failed: strings.Contains(flags, "fail"),
		}
		if f[3] != "-" {
			n.Of = f[3]
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			a, b, found := strings.Cut(r, "-")
			lo, err1 := strconv.Atoi(a)
			hi := lo
			var err2 error
			if found {
				hi, err2 = strconv.Atoi(b)
			}
			if err1 != nil || err2 != nil || hi < lo {
				return nil, fmt.Errorf("CLUSTER NODES: bad slot range %q", r)
			}
			n.Slots += hi - lo + 1
		}
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b Node) int {
		if a.Master != b.Master {
			if a.Master {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Addr, b.Addr)
	})
	return nodes, sc.Err()
}

// Masters returns the addresses of the masters that serve slots and are
// not flagged failed, as a running node sees them.
func (c *Cluster) Masters(ctx context.Context) ([]string, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if n.Master && n.Slots > 0 && !n.Failed {
			out = append(out, n.Addr)
		}
	}
	return out, nil
}

// Replicas returns the addresses of the replicas of the master at addr
// that are not flagged failed.
func (c *Cluster) Replicas(ctx context.Context, master string) ([]string, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var id string
	for _, n := range nodes {
		if n.Addr == master {
			id = n.ID
		}
	}
	if id == "" {
		return nil, fmt.Errorf("no node at %s", master)
	}
	var out []string
	for _, n := range nodes {
		if !n.Master && n.Of == id && !n.Failed {
			out = append(out, n.Addr)
		}
	}
	return out, nil
}

// KeysPerMaster returns the number of keys (DBSIZE) held by each master
// that serves slots, by address.
func (c *Cluster) KeysPerMaster(ctx context.Context) (map[string]int64, error) {
	masters, err := c.Masters(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, m := range masters {
		rdb := redis.NewClient(&redis.Options{Addr: m, MaxRetries: -1})
		n, err := rdb.DBSize(ctx).Result()
		rdb.Close()
		if err != nil {
			return nil, fmt.Errorf("DBSIZE on %s: %w", m, err)
		}
		out[m] = n
	}
	return out, nil
}

// Failover makes a replica of the master at addr take its place with a
// coordinated CLUSTER FAILOVER (the replica catches up with the master's
// writes first, so none is lost), and waits until the cluster is ready
// again with the replica as master. It returns the new master's address.
func (c *Cluster) Failover(ctx context.Context, master string) (string, error) {
	reps, err := c.Replicas(ctx, master)
	if err != nil {
		return "", err
	}
	if len(reps) == 0 {
		return "", fmt.Errorf("master %s has no replica", master)
	}
	rep := reps[0]
	rdb := redis.NewClient(&redis.Options{Addr: rep, MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.ClusterFailover(ctx).Err(); err != nil {
		return "", fmt.Errorf("CLUSTER FAILOVER on %s: %w", rep, err)
	}
	for {
		role, err := rdb.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 && role[0] == "master" {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("replica %s did not become master: %w", rep, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return rep, c.WaitReady(ctx)
}

// Kill stops the node at addr at once (SIGKILL), as a crash would, and
// waits for the process to end. Its peers notice after NodeTimeout; a
// killed master's replica then takes over (losing the writes it had not
// received). Killing a node that is not running does nothing.
func (c *Cluster) Kill(addr string) {
	c.mu.Lock()
	cmd, done := c.procs[addr], c.done[addr]
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// running returns the addresses of the nodes whose process has not ended.
func (c *Cluster) running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.addrs {
		select {
		case <-c.done[a]:
		default:
			out = append(out, a)
		}
	}
	return out
}

// WaitReady waits until every running node reports cluster_state:ok,
// knows every other running node and sees each as a master serving slots
// or as a replica, sees none of them failing, and all
// of them see the same masters serving all 16384 slots; and until every
// replica's link to its master is up (its first sync done); or ctx ends.
func (c *Cluster) WaitReady(ctx context.Context) error {
	var last error
	for {
		if last = c.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready: %w (%w)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) ready(ctx context.Context) error {
	var want string
	for _, addr := range c.running() {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		info, err := rdb.ClusterInfo(ctx).Result()
		var nodes, repl string
		if err == nil {
			nodes, err = rdb.ClusterNodes(ctx).Result()
		}
		if err == nil {
			repl, err = rdb.Info(ctx, "replication").Result()
		}
		rdb.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state is not ok", addr)
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("%s: replica not in sync with its master yet", addr)
		}
		parsed, err := parseNodes(nodes)
		if err != nil {
			return err
		}
		live := 0
		for _, n := range parsed {
			if n.Failed {
				continue
			}
			live++
			if n.Slots == 0 && n.Of == "" {
				return fmt.Errorf("%s sees %s as neither a master with slots nor a replica", addr, n.Addr)
			}
		}
		if live != len(c.running()) {
			return fmt.Errorf("%s sees %d live nodes, %d run", addr, live, len(c.running()))
		}
		var view []string
		slots := 0
		for _, n := range parsed {
			if n.Master && n.Slots > 0 {
				if n.Failed {
					return fmt.Errorf("%s sees master %s failing", addr, n.Addr)
				}
				view = append(view, n.Addr+"="+strconv.Itoa(n.Slots))
				slots += n.Slots
			}
		}
		if slots != 16384 {
			return fmt.Errorf("%s sees %d slots served", addr, slots)
		}
		v := strings.Join(view, ",")
		if want == "" {
			want = v
		} else if v != want {
			return fmt.Errorf("nodes disagree on the masters: %s and %s", want, v)
		}
	}
	return nil
}

// Close kills every node (SIGKILL: nothing on disk is worth keeping) and
// removes the cluster's directory. It may be called more than once.
func (c *Cluster) Close() error {
	var err error
	c.closeMu.Do(func() {
		c.mu.Lock()
		addrs := make([]string, 0, len(c.procs))
		for a := range c.procs {
			addrs = append(addrs, a)
		}
		c.mu.Unlock()
		for _, a := range addrs {
			c.Kill(a)
		}
		if c.dir != "" {
			err = os.RemoveAll(c.dir)
		}
	})
	return err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
