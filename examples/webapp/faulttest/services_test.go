package faulttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/testenv"
	"github.com/keyhold/keyhold/internal/testkit"
)

// The servers this test starts are its own, on ports picked at run time:
// never the machine's shared PostgreSQL and Redis, which other tests use.
var sharedPorts = []int{5432, 6379}

// freePort returns a loopback TCP port that was free a moment ago (the
// system's pick), never a shared server's.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !slices.Contains(sharedPorts, port) {
			return port
		}
	}
}

// secret returns a random password of letters and digits.
func secret() string { return strings.ToLower(rand.Text()) }

// pgServer is a PostgreSQL server of the test's own: its data directory in
// a temporary directory, its port free at start, password authentication
// (SCRAM) with a random password, so that the test can check that the
// password shows in no page and no log.
type pgServer struct {
	t          *testing.T
	bin        string // the directory of initdb, pg_ctl, postgres
	root       string // temporary: the data directory, the log, the socket
	data       string
	port       int
	password   string
	asPostgres bool // run the binaries as the postgres OS user (we are root, which PostgreSQL refuses)
}

// pgBinDir finds PostgreSQL's binaries: Debian keeps them in
// /usr/lib/postgresql/VERSION/bin (the highest version is taken), else
// next to a pg_ctl on PATH.
func pgBinDir(t *testing.T) string {
	t.Helper()
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return false
			}
		}
		return true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return n
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real)
		}
	}
	testenv.Missing(t, "PostgreSQL's initdb, pg_ctl and postgres not found under /usr/lib/postgresql/*/bin nor on PATH (apt-get install postgresql)")
	return ""
}

// startPostgres makes a cluster in a new temporary directory and starts
// it; it is stopped (immediate mode) and its directory removed when the
// test ends.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	s := &pgServer{t: t, bin: pgBinDir(t), port: freePort(t), password: secret()}
	var uid, gid int
	if os.Geteuid() == 0 {
		u, err := osuser.Lookup("postgres")
		if err != nil {
			testenv.Missing(t, "running as root, and PostgreSQL refuses root: no postgres OS user to run it as (apt-get install postgresql makes one)")
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			testenv.Missing(t, "running as root, and PostgreSQL refuses root: runuser not found (util-linux)")
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		s.asPostgres = true
	}
	root, err := os.MkdirTemp("", "keyhold-faulttest-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop("immediate")
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("remove the PostgreSQL directory: %v", err)
		}
	})
	s.root, s.data = root, filepath.Join(root, "data")
	pwfile := filepath.Join(root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.asPostgres {
		for _, p := range []string{root, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.run(2*time.Minute, "initdb", "-D", s.data, "-U", "postgres", "-A", "scram-sha-256",
		"--pwfile="+pwfile, "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pwfile); err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// DSN is the URL the app connects with: the password in it, over TCP to
// the loopback port.
func (s *pgServer) DSN() string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", s.password, s.port)
}

// run runs one of PostgreSQL's binaries (as the postgres user if we are
// root) in the server's directory, and returns its output in the error.
func (s *pgServer) run(timeout time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.asPostgres {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.root
	// pg_ctl start leaves the server running with its output in the log
	// (-l), not in our pipes; WaitDelay guards against one kept anyway.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// start starts the server and waits until it accepts connections.
func (s *pgServer) start() error {
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories='%s' -c shared_buffers=32MB -c max_connections=50 -c fsync=on",
		s.port, s.root)
	return s.run(time.Minute, "pg_ctl", "-D", s.data, "-l", filepath.Join(s.root, "postgres.log"), "-w", "-t", "60", "-o", opts, "start")
}

// restart is pg_ctl restart in mode (fast: the sessions are ended, the
// transactions in flight rolled back, a checkpoint written).
func (s *pgServer) restart(mode string) error {
	return s.run(time.Minute, "pg_ctl", "-D", s.data, "-l", filepath.Join(s.root, "postgres.log"), "-w", "-t", "60", "-m", mode, "restart")
}

// stop is pg_ctl stop in mode (immediate: no checkpoint, as in a crash;
// the next start recovers from the WAL). A server not running is no
// error.
func (s *pgServer) stop(mode string) error {
	if _, err := os.Stat(filepath.Join(s.data, "postmaster.pid")); err != nil {
		return nil
	}
	return s.run(time.Minute, "pg_ctl", "-D", s.data, "-w", "-t", "60", "-m", mode, "stop")
}

// log returns the end of the server's log, for a failure's message.
func (s *pgServer) log() string {
	b, _ := os.ReadFile(filepath.Join(s.root, "postgres.log"))
	return tail(string(b), 4000)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// redisServer is a Redis server of the test's own, on a free port, with a
// random password. It keeps an append-only file fsynced at every write
// (appendfsync always) in its directory: stopped and started again, it
// has every write it acknowledged, revocations included. wipe empties the
// directory, for a restart that loses everything.
type redisServer struct {
	t        *testing.T
	dir      string // the append-only file's
	conf     string
	port     int
	password string
	cmd      *exec.Cmd
	done     chan struct{}
	log      *testkit.SyncBuffer
}

// startRedis starts a Redis server; it is stopped and its directory
// removed when the test ends.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin := testenv.LookPath(t, "redis-server", "apt-get install redis-server")
	root := t.TempDir()
	s := &redisServer{t: t, dir: filepath.Join(root, "data"), conf: filepath.Join(root, "redis.conf"),
		port: freePort(t), password: secret(), log: &testkit.SyncBuffer{}}
	conf := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode yes
requirepass %s
dir %s
save ""
appendonly yes
appendfsync always
daemonize no
logfile ""
`, s.port, s.password, s.dir)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(false) })
	if err := s.start(bin); err != nil {
		t.Fatal(err)
	}
	return s
}

// URL is the URL the app connects with, password included.
func (s *redisServer) URL() string {
	return fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", s.password, s.port)
}

func (s *redisServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port), Password: s.password, MaxRetries: -1})
}

// start starts redis-server and waits (up to 20 s) until it answers PING.
func (s *redisServer) start(bin string) error {
	if bin == "" {
		bin = s.cmd.Path
	}
	cmd := exec.Command(bin, s.conf)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	done := s.done
	go func() { _ = cmd.Wait(); close(done) }()
	c := s.client()
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %s", tail(s.log.String(), 2000))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server does not answer: %v\n%s", err, tail(s.log.String(), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the server: SHUTDOWN NOSAVE if nosave (no snapshot; the
// append-only file is kept, fsynced), else SIGTERM. It waits for the
// process, and kills it (by its PID) after 15 s.
func (s *redisServer) stop(nosave bool) error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	var err error
	if nosave {
		c := s.client()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = c.ShutdownNoSave(ctx).Err()
		cancel()
		c.Close()
		// The server closes the connection instead of answering.
		if err != nil && (errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "closed")) {
			err = nil
		}
	} else {
		err = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-s.done:
		return err
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.Join(err, errors.New("redis-server did not stop in 15 s: killed"))
	}
}

// wipe deletes everything the server kept (call it stopped).
func (s *redisServer) wipe() error {
	if err := os.RemoveAll(s.dir); err != nil {
		return err
	}
	return os.MkdirAll(s.dir, 0o700)
}

// webapp is the web app's process.
type webapp struct {
	base   string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stderr *testkit.SyncBuffer
	done   chan struct{}
	err    error // the process's exit, once done is closed
}

// webappEnv names a web app binary to run instead of building one: the
// way to run the test against a changed copy of the app (the check that
// the test fails on broken code) without touching the working tree.
const webappEnv = "KEYHOLD_FAULTTEST_WEBAPP"

// buildWebapp builds the web app into a temporary directory, or returns
// the binary webappEnv names.
func buildWebapp(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv(webappEnv); bin != "" {
		t.Logf("%s: running %s", webappEnv, bin)
		return bin
	}
	goBin := testenv.LookPath(t, "go", "the Go toolchain")
	bin := filepath.Join(t.TempDir(), "webapp")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Without -race even under go test -race: the app's Argon2id (64 MiB
	// per login and per unlock) is then ten times slower, and the logins
	// after Redis loses the sessions take over a minute on two cores.
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/keyhold/keyhold/examples/webapp").CombinedOutput()
	if err != nil {
		t.Fatalf("go build the web app: %v\n%s", err, out)
	}
	return bin
}

// startWebapp starts the web app on a free port with PostgreSQL and Redis
// (given in its environment, not on its command line), trusting the test
// as its reverse proxy on loopback: each simulated client has an address
// of its own (X-Forwarded-For), so that the limits per address (3
// sign-ups an hour) count per client as they would behind a real proxy.
// It returns once the app listens.
func startWebapp(t *testing.T, bin, dsn, redisURL string) *webapp {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-trusted-proxy", "127.0.0.1/32",
		"-db", filepath.Join(dir, "unused.db"), "-totp-key", filepath.Join(dir, "totp-key"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"KEYHOLD_WEBAPP_POSTGRES="+dsn,
		"KEYHOLD_WEBAPP_REDIS="+redisURL,
		"KEYHOLD_WEBAPP_REDIS_PREFIX=faulttest:",
		"KEYHOLD_WEBAPP_TRUSTED_PROXIES=")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &webapp{cmd: cmd, stderr: &testkit.SyncBuffer{}, done: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var ev struct{ Msg, Addr string }
			if json.Unmarshal(line, &ev) == nil && ev.Msg == "webapp.listening" {
				select {
				case listening <- ev.Addr:
				default:
				}
			}
			_, _ = w.stderr.Write(append(line, '\n'))
		}
		_, _ = io.Copy(w.stderr, pipe) // a line over the scanner's limit: kept whole for the scan for panics
		w.err = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() { w.stop() })
	select {
	case addr := <-listening:
		w.base = "http://" + addr
		return w
	case <-w.done:
		t.Fatalf("the web app exited before listening: %v\n%s", w.err, w.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("the web app did not listen in 60 s\n%s", w.stderr)
	}
	return nil
}

// stop sends SIGTERM (the app finishes its requests and closes its
// pools), waits up to 15 s, then kills it; it returns the exit error.
func (w *webapp) stop() error {
	select {
	case <-w.done:
		return w.err
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
		return w.err
	case <-time.After(15 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
		return errors.New("the web app did not stop in 15 s after SIGTERM: killed")
	}
}
