// Command multi runs two instances of the example web app
// (examples/webapp) on one PostgreSQL database and one Redis server,
// behind a small reverse proxy that sends each request to the next
// instance in turn, and prints the URL to open.
//
// It shows that keyhold keeps nothing a user needs in one process: log
// in, unlock, write notes, and every other request lands on the other
// instance, which finds the session, its unlocked vault key (sealed in the
// session record, opened with the browser's cookie), the notes and the
// second factors where the first left them. A logout, a lock, a revoked
// device on one instance holds on the other at once, and the rate limits
// and lockouts count attempts on both instances together, as one: five
// logins per address per 15 minutes, however the proxy spreads them.
//
// What the instances share: PostgreSQL holds keyhold's SQL store (vaults,
// second factors, passkeys, the private notes' blobs) and the app's tables
// (users, notes, and the key of the device cookies, made by the first
// instance to start); Redis holds sessions, rate limits, lockouts and
// passkey challenges, under one key prefix; the TOTP key file
// (-totp-key) is given to both. Each instance trusts the proxy
// (-trusted-proxy 127.0.0.1/32), so the client address it limits by is
// the one the proxy puts in X-Forwarded-For, not the proxy's own; the
// proxy drops whatever X-Forwarded-* or Forwarded headers clients send,
// so no client can choose its address.
//
// Run it from anywhere in the repository with
//
//	go run ./examples/multi -postgres 'postgres://user@127.0.0.1:5432/db?sslmode=disable' -redis redis://127.0.0.1:6379/0
//
// (or with KEYHOLD_WEBAPP_POSTGRES and KEYHOLD_WEBAPP_REDIS set instead of
// the flags, which keeps a password out of the command line) and open the
// URL it prints. The app's tables go where the DSN's search_path puts
// them (add &search_path=NAME to keep them in a schema of their own,
// which must exist). -addr changes the proxy's address
// (127.0.0.1:8090), -redis-prefix the instances' Redis key prefix
// ("keyhold-multi:"), -totp-key their TOTP key file
// (./keyhold-multi.totp-key, created with mode 0600 if absent; keep it
// for the next run, or enrolled authenticators stop working). Each response carries X-Keyhold-Instance: a or b,
// the instance that served it (the browser's developer tools show it).
// The proxy answers only requests for localhost or a loopback address
// (421 to any other Host: see newProxy).
//
// Why subprocesses: the web app is a command (package main), which no
// other package can import, and running the real binary twice is the
// deployment this is about. multi builds it once with "go build" into a
// temporary directory (so it needs the Go toolchain and runs from inside
// the module), starts it twice on ports the system picks (each instance
// logs the address it listens on), and stops both with SIGTERM when
// interrupted. Everything is plain HTTP on loopback, the web app's
// development mode: for production, put a TLS-terminating proxy in front
// and run the instances with -tls-cert/-tls-key or on loopback behind it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The web app's environment variables for its storage (see
// examples/webapp's documentation).
const (
	envPostgres    = "KEYHOLD_WEBAPP_POSTGRES"
	envRedis       = "KEYHOLD_WEBAPP_REDIS"
	envRedisPrefix = "KEYHOLD_WEBAPP_REDIS_PREFIX"
)

// webappPackage is the web app's import path, which go build accepts from
// anywhere inside the module.
const webappPackage = "github.com/keyhold/keyhold/examples/webapp"

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address of the proxy (loopback: the instances serve plain HTTP)")
	postgres := flag.String("postgres", "", "PostgreSQL DSN shared by both instances (default: $"+envPostgres+")")
	redisURL := flag.String("redis", "", "Redis URL shared by both instances (default: $"+envRedis+")")
	prefix := flag.String("redis-prefix", "keyhold-multi:", "prefix of the instances' Redis keys")
	totpKey := flag.String("totp-key", "keyhold-multi.totp-key", "the TOTP key file both instances use (created with mode 0600 if absent)")
	flag.Parse()
	if *postgres == "" {
		*postgres = os.Getenv(envPostgres)
	}
	if *redisURL == "" {
		*redisURL = os.Getenv(envRedis)
	}
	if *postgres == "" || *redisURL == "" {
		fmt.Fprintln(os.Stderr, "multi needs a PostgreSQL DSN and a Redis URL: -postgres DSN -redis URL (or "+envPostgres+" and "+envRedis+")")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, clusterConfig{PostgresDSN: *postgres, RedisURL: *redisURL, RedisPrefix: *prefix, TOTPKeyPath: *totpKey}); err != nil {
		log.Printf("multi: %v", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, cfg clusterConfig) error {
	dir, err := os.MkdirTemp("", "keyhold-multi-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log.Printf("multi: building the web app")
	bin, err := buildWebapp(ctx, dir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return fmt.Errorf("refusing to serve plain HTTP on %s, which is not a loopback address", ln.Addr())
	}
	// Browsers reach the app at the proxy: that is the origin passkeys are
	// bound to, on both instances.
	cfg.Origin = fmt.Sprintf("http://localhost:%d", tcp.Port)
	cfg.Binary = bin
	instances, err := startInstances(ctx, cfg, func(name string) io.Writer { return prefixWriter(os.Stderr, "["+name+"] ") })
	if err != nil {
		return err
	}
	defer stopAll(instances)

	srv := &http.Server{Handler: newProxy(instances, roundRobin(len(instances))), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("\nOpen %s/ (requests alternate between instance a at %s and instance b at %s)\n\n", cfg.Origin, instances[0].URL.Host, instances[1].URL.Host)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-instances[0].Done():
	case <-instances[1].Done():
	}
	if ctx.Err() == nil { // an instance stopped on its own
		err = errors.New("an instance stopped (its log says why)")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdownCtx))
}

// buildWebapp builds the web app into dir and returns the binary's path.
func buildWebapp(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "webapp")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, webappPackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", webappPackage, err, out)
	}
	return bin, nil
}

// clusterConfig is what both instances get.
type clusterConfig struct {
	Binary      string // the web app
	PostgresDSN string
	RedisURL    string
	RedisPrefix string
	TOTPKeyPath string
	Origin      string // where browsers reach the proxy
}

// An instance is one web app process.
type instance struct {
	Name string
	URL  *url.URL // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Done is closed when the process has exited.
func (in *instance) Done() <-chan struct{} { return in.done }

// stop sends SIGTERM (the web app then finishes its requests in flight)
// and waits up to 10 s before killing it.
func (in *instance) stop() {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

func stopAll(instances []*instance) {
	var wg sync.WaitGroup
	for _, in := range instances {
		wg.Go(in.stop)
	}
	wg.Wait()
}

// startInstances starts instances a and b, one after the other (the
// first creates the tables and the device key; the second could start at
// the same time, the web app makes that safe, but the logs read better),
// each logging to logs(name).
func startInstances(ctx context.Context, cfg clusterConfig, logs func(name string) io.Writer) ([]*instance, error) {
	var instances []*instance
	for _, name := range []string{"a", "b"} {
		in, err := startInstance(ctx, cfg, name, logs(name))
		if err != nil {
			stopAll(instances)
			return nil, err
		}
		instances = append(instances, in)
	}
	return instances, nil
}

// startInstance starts the web app on a port the system picks, and
// returns once it listens (the address read from its "webapp.listening"
// log line), or fails if it exits first or takes over 30 s.
func startInstance(ctx context.Context, cfg clusterConfig, name string, logw io.Writer) (*instance, error) {
	cmd := exec.Command(cfg.Binary,
		"-addr", "127.0.0.1:0",
		"-origin", cfg.Origin,
		"-trusted-proxy", "127.0.0.1/32",
		"-totp-key", cfg.TOTPKeyPath)
	// The DSN and the URL go in the environment, not on the command line
	// that other users of the machine can read.
	cmd.Env = append(os.Environ(), envPostgres+"="+cfg.PostgresDSN, envRedis+"="+cfg.RedisURL, envRedisPrefix+"="+cfg.RedisPrefix)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	in := &instance{Name: name, cmd: cmd, done: make(chan struct{})}
	listening := make(chan string, 1)
	go func() {
		// Every line goes to logw; the first "webapp.listening" one says
		// where the instance listens.
		sc := bufio.NewScanner(stderr)
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
			_, _ = logw.Write(append(line, '\n'))
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(in.done)
	}()
	select {
	case addr := <-listening:
		in.URL = &url.URL{Scheme: "http", Host: addr}
		return in, nil
	case <-in.done:
		return nil, fmt.Errorf("instance %s exited before listening (its log says why)", name)
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	in.stop()
	return nil, fmt.Errorf("instance %s did not start listening", name)
}

// A picker chooses the instance (its index) for a request.
type picker func(r *http.Request) int

// roundRobin sends each request to the next of n instances. No affinity
// is needed: any instance serves any request.
func roundRobin(n int) picker {
	var next atomic.Uint64
	return func(*http.Request) int { return int((next.Add(1) - 1) % uint64(n)) }
}

// newProxy returns the reverse proxy: each request goes to the instance
// pick chooses, with the client's Host header kept (the instances check
// the origin against it: CSRF protection, passkeys) and X-Forwarded-For,
// -Host and -Proto set from the connection, replacing whatever the client
// sent (httputil.ReverseProxy's Rewrite drops the inbound ones). Each
// response names its instance in X-Keyhold-Instance.
//
// It serves only requests for localhost or a loopback address (any
// port), and answers 421 to any other Host: a page of another site whose
// name its owner points at 127.0.0.1 (DNS rebinding) would otherwise
// reach the app from the developer's browser as a page of the app's own
// origin, and read its answers.
func newProxy(instances []*instance, pick picker) http.Handler {
	rp := newReverseProxy(instances, pick)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "multi serves http://localhost only", http.StatusMisdirectedRequest)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether the Host header names this machine:
// localhost, or a loopback address, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.IsLoopback()
}

func newReverseProxy(instances []*instance, pick picker) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			in := instances[pick(pr.In)]
			pr.SetURL(in.URL)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			for _, in := range instances {
				if in.URL.Host == resp.Request.URL.Host {
					resp.Header.Set("X-Keyhold-Instance", in.Name)
				}
			}
			return nil
		},
		ErrorLog: log.New(os.Stderr, "multi proxy: ", 0),
	}
}

// prefixWriter writes each line it is given to w, after prefix.
func prefixWriter(w io.Writer, prefix string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		var b strings.Builder
		for line := range strings.Lines(string(p)) {
			b.WriteString(prefix)
			b.WriteString(line)
		}
		_, err := io.WriteString(w, b.String())
		return len(p), err
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
