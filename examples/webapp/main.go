// Command webapp is a small notes app built on keyhold: sign-up with a
// passphrase policy, login with Argon2id password hashes, a per-user vault
// whose notes are sealed so that the database alone opens nothing, lock and
// unlock, a second factor that users may turn on (TOTP authenticator apps,
// with login recovery codes), passkeys (sign in without a username, unlock
// the vault with one), private notes (keyhold's zero-knowledge mode,
// package vault/zk: sealed in the browser under a passphrase of their own,
// which the server never receives), a list of logged-in devices with
// revocation (one, or "log out everywhere else") behind a recent
// re-authentication, an Account page (a password change, which re-wraps
// the vault; a new password set without the old one from a fresh,
// multi-factor session whose vault is open; a master-key rotation with the notes'
// re-encryption and its progress; new recovery keys; what the lockout
// knows of failed sign-ins, for the owner only), "Forgot your password?"
// (a vault recovery key, with an authenticator or login recovery code for
// a user who has TOTP, sets a new password; a user whose only second
// factor is a passkey signs in with it instead: forgot.go), account
// deletion, and logout.
// It keeps everything in one SQLite file, except the key that seals the
// TOTP secrets, or in PostgreSQL and Redis (see Storage below).
//
// The Private notes page (/private-notes) needs a login but not the
// server-side vault unlocked. Its script creates the user's private vault
// under a passphrase of at least 15 characters, which the page tells the
// user must differ from the login password (the server sees that one at
// each login; nothing checks it, which would take sending the passphrase
// to the server), shows its recovery key once, and unlocks it with the
// passphrase, the recovery key or a passkey with the PRF extension ("Let
// a passkey unlock it" sets one up); each note's title and body are sealed together in the browser. The
// server keeps only sealed blobs (under /zk/) and cannot reset the
// passphrase: a user who loses it and the recovery key loses the private
// notes. The page shows the vault's key fingerprint, to compare between
// two devices, and warns when the server serves an older version of a
// note than the browser has seen. The server serves the page's
// JavaScript, so this protects against a leaked database or backup, not
// against a server that is hostile while the user types the passphrase.
//
// Run it from the repository's root with:
//
//	go run ./examples/webapp
//
// and open http://localhost:8080/ (localhost, not 127.0.0.1: passkeys are
// bound to a host name, and browsers allow them over plain HTTP only on
// localhost). It creates ./keyhold-webapp.db (mode
// 0600; -db names another path) and, next to it,
// ./keyhold-webapp.db.totp-key (mode 0600; -totp-key names another path):
// the key that seals the users' TOTP secrets, kept out of the database so
// that a copy of the database alone holds none of them. Back the key file
// up, apart from the database: without it, every TOTP authenticator stops
// working (users then log in with a recovery code and enroll again).
// -addr changes the listen address.
//
// # Storage
//
// With no storage flag, everything is in the SQLite file above, and
// nothing else needs setting up. For several instances of the app behind
// a load balancer (examples/multi runs two), give them one PostgreSQL and
// one Redis:
//
//	-postgres DSN   (or KEYHOLD_WEBAPP_POSTGRES=DSN)
//	-redis URL      (or KEYHOLD_WEBAPP_REDIS=URL)
//
// -postgres (a URL such as postgres://user:password@host:5432/db, or
// key=value pairs, as pgx reads them) puts keyhold's SQL store (vaults,
// second factors, passkeys, the private notes' blobs) and the app's
// tables (users, notes, …) in that database, in the schema its
// search_path resolves to (add ?search_path=NAME to the URL to choose
// one; it must exist). No SQLite file is made. The app's table names are
// common ones (users, notes, keys_to_show, totp_codes_saved, app_secrets): it refuses to
// start on a table of one of those names whose columns are not its own,
// and a schema of its own avoids meeting another program's.
//
// -redis (redis://[user:password@]host:port/db, or rediss:// for TLS)
// puts the short-lived state every request reads in Redis: sessions, rate
// limits, lockouts and the passkey ceremonies' challenges, under the key
// prefix -redis-prefix (or KEYHOLD_WEBAPP_REDIS_PREFIX; default
// "keyhold-webapp:"; apps sharing a Redis need different ones). Without
// -redis, those stay in SQL. The app talks to the one Redis server at the
// URL's address (not through Sentinel, nor to a Redis Cluster).
//
// To a PostgreSQL or a Redis on another machine, use TLS that checks the
// server: sslmode=verify-full in the DSN (pgx's default, prefer, falls
// back to plain TCP and checks no certificate) and rediss://; the app
// warns at start (webapp.storage_unprotected) otherwise.
//
// A flag wins over its environment variable. Prefer the variables for a
// DSN or a URL that holds a password: other users of the machine can read
// command lines. The TOTP key file is in no database: give every instance
// a copy of the same one (-totp-key; its default is still the -db path +
// ".totp-key"). The key of the device cookies is in the app_secrets
// table, made by the first instance to start.
//
// Behind a reverse proxy, list its networks with -trusted-proxy CIDR
// (repeat it, or give a comma list; or KEYHOLD_WEBAPP_TRUSTED_PROXIES):
// the proxy's X-Forwarded-For then says which client each request comes
// from, for the rate limits and lockouts (which would otherwise count
// every user as the proxy), and its X-Forwarded-Proto whether the client
// used HTTPS. Trust only a proxy that sets these headers itself and drops
// what clients send: through any other, clients choose their address.
// The rule on plain HTTP below still holds: a proxy on another machine
// reaches the app over TLS. A TLS-terminating proxy on this machine may
// reach it over plain HTTP on loopback: give -origin https://… (the
// origin browsers use) with -trusted-proxy, and the app keeps the strict
// cookie (Secure, __Host-) and accepts sessions only on the requests the
// proxy says came over HTTPS (an https:// origin over plain HTTP without
// a trusted proxy is refused at start).
//
// Passkeys work only at the origin given with -origin (the scheme, host
// and port browsers use to reach the app; its host is the WebAuthn RP ID
// the passkeys are bound to for good: changing it loses them). Over plain
// HTTP it defaults to http://localhost:PORT, PORT being the one listened
// on; with TLS, give it (-origin https://notes.example.com), or passkeys
// are off.
//
// Plain HTTP is served only on a loopback address, for development: the
// session cookie then loses its Secure flag and __Host- prefix
// (session.Config.AllowInsecureCookies), unless the origin is https://
// behind a trusted proxy (above). In that development mode only requests
// whose Host is localhost or a loopback address are answered (421
// otherwise), so that a page whose name its owner points at 127.0.0.1
// (DNS rebinding) cannot use the app from the developer's browser; the
// -trusted-proxy networks cannot include every address (0.0.0.0/0, ::/0
// are refused). On any other address the app
// refuses to start unless it is given a certificate with -tls-cert and
// -tls-key, and then serves HTTPS with the strict cookie.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keyhold/keyhold/kdf"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dbPath := flag.String("db", "keyhold-webapp.db", "SQLite database file (created with mode 0600)")
	certFile := flag.String("tls-cert", "", "TLS certificate file (PEM); required off loopback")
	keyFile := flag.String("tls-key", "", "TLS private key file (PEM); required off loopback")
	origin := flag.String("origin", "", "origin browsers reach the app at, for passkeys (e.g. https://notes.example.com); default over plain HTTP: http://localhost:PORT; with TLS and none, passkeys are off")
	totpKey := flag.String("totp-key", "", "file of the key that seals TOTP secrets, created with mode 0600 if absent; back it up apart from the database; instances sharing a database need the same one (default: the -db path + \".totp-key\")")
	postgres := flag.String("postgres", "", "PostgreSQL DSN (postgres://user:password@host:5432/db?search_path=schema): keyhold's store and the app's tables go there instead of the SQLite file (env "+envPostgres+")")
	redisURL := flag.String("redis", "", "Redis URL (redis://[user:password@]host:port/db, rediss:// for TLS): sessions, rate limits, lockouts and passkey challenges go there (env "+envRedis+")")
	redisPrefix := flag.String("redis-prefix", "", "prefix of the app's Redis keys (default \""+DefaultRedisPrefix+"\"; env "+envRedisPrefix+")")
	var proxies proxyList
	flag.Var(&proxies, "trusted-proxy", "network (CIDR) of a reverse proxy in front of the app whose X-Forwarded-For and X-Forwarded-Proto are believed; repeat it or give a comma list (env "+envProxies+")")
	lowCostKDF := flag.Bool("test-low-cost-kdf", false, "for tests only: new vault passphrase slots use Argon2id at 19 MiB (kdf.InteractiveParams) instead of 64 MiB; refused with -tls-cert")
	flag.Parse()

	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg := config{DBPath: *dbPath, TOTPKeyPath: *totpKey, Origin: *origin, Logger: logger}
	if *lowCostKDF {
		if *certFile != "" || *keyFile != "" {
			logger.Error("webapp.failed", "error", "-test-low-cost-kdf is for tests on plain HTTP on loopback only")
			os.Exit(2)
		}
		cfg.VaultKDF = kdf.InteractiveParams()
		logger.Warn("webapp.test_low_cost_kdf", "reason", "new vault slots use kdf.InteractiveParams: for tests only")
	}
	if err := fromEnv(flag.CommandLine, &cfg, *postgres, *redisURL, *redisPrefix, proxies); err != nil {
		logger.Error("webapp.failed", "error", err)
		os.Exit(2)
	}
	if err := run(*addr, cfg, *certFile, *keyFile); err != nil {
		logger.Error("webapp.failed", "error", err)
		os.Exit(1)
	}
}

// The environment variables of the storage and proxy flags.
const (
	envPostgres    = "KEYHOLD_WEBAPP_POSTGRES"
	envRedis       = "KEYHOLD_WEBAPP_REDIS"
	envRedisPrefix = "KEYHOLD_WEBAPP_REDIS_PREFIX"
	envProxies     = "KEYHOLD_WEBAPP_TRUSTED_PROXIES"
)

// fromEnv completes cfg with the storage and proxy flags of fs, each taken
// from its environment variable when the flag was not given.
func fromEnv(fs *flag.FlagSet, cfg *config, postgres, redisURL, redisPrefix string, proxies proxyList) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(name, value, env string) string {
		if set[name] {
			return value
		}
		return os.Getenv(env)
	}
	cfg.PostgresDSN = pick("postgres", postgres, envPostgres)
	cfg.RedisURL = pick("redis", redisURL, envRedis)
	cfg.RedisPrefix = pick("redis-prefix", redisPrefix, envRedisPrefix)
	if !set["trusted-proxy"] {
		if err := proxies.Set(os.Getenv(envProxies)); err != nil {
			return fmt.Errorf("%s: %w", envProxies, err)
		}
	}
	cfg.TrustedProxies = proxies
	return nil
}

// proxyList is the -trusted-proxy flag: networks, each given as a CIDR
// (192.0.2.0/24) or a single address (192.0.2.1), repeated or
// comma-separated; never a network of every address.
type proxyList []netip.Prefix

func (p *proxyList) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, pr := range *p {
		s[i] = pr.String()
	}
	return strings.Join(s, ",")
}

func (p *proxyList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pr, err := netip.ParsePrefix(part)
		if err != nil {
			addr, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return fmt.Errorf("%q is neither a network (CIDR, such as 10.0.0.0/8) nor an address", part)
			}
			pr = netip.PrefixFrom(addr, addr.BitLen())
		}
		// Every address (0.0.0.0/0, ::/0, or ::ffff:0.0.0.0/96, which is
		// read as 0.0.0.0/0): every client would be a trusted proxy and
		// choose its own address and scheme with the forwarding headers.
		if bits := pr.Bits(); bits == 0 || pr.Addr().Is4In6() && bits == 96 {
			return fmt.Errorf("%q is every address: name the proxies' own networks, not the clients'", part)
		}
		*p = append(*p, pr.Masked())
	}
	return nil
}

func run(addr string, cfg config, certFile, keyFile string) error {
	logger := cfg.Logger
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	useTLS := certFile != "" || keyFile != ""
	if useTLS && (certFile == "" || keyFile == "") {
		return errors.New("give both -tls-cert and -tls-key, or neither")
	}
	ln, err := listen(addr, useTLS)
	if err != nil {
		return err
	}
	// Plain HTTP means sessions without the Secure cookie flag: listen
	// has made sure that this happens only on a loopback address.
	if cfg.InsecureCookies, err = insecureCookies(useTLS, cfg); err != nil {
		ln.Close()
		return err
	}
	if cfg.Origin == "" && !useTLS {
		cfg.Origin = fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	}
	handler, cleanup, err := newApp(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		if err := cleanup(); err != nil {
			logger.Error("webapp.close_failed", "error", err)
		}
	}()

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "https"
	if !useTLS {
		scheme = "http"
	}
	if cfg.InsecureCookies {
		logger.Warn("webapp.insecure_dev_mode", "reason", "plain HTTP on a loopback address: session cookies are not Secure; use -tls-cert and -tls-key in production")
	}
	url := fmt.Sprintf("%s://%s/", scheme, ln.Addr())
	if cfg.Origin != "" {
		url = cfg.Origin + "/"
	}
	storage := []any{"db", cfg.DBPath}
	if cfg.PostgresDSN != "" { // never the DSN or the URL: they may hold passwords
		storage = []any{"db", "postgres"}
	}
	if cfg.RedisURL != "" {
		storage = append(storage, "sessions", "redis")
	}
	logger.Info("webapp.listening", append([]any{"url", url, "addr", ln.Addr().String(), "trusted_proxies", len(cfg.TrustedProxies)}, storage...)...)

	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("webapp.shutting_down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil { // waits for requests in flight
		return err
	}
	logger.Info("webapp.stopped")
	return nil
}

// insecureCookies reports whether the app's cookies go without Secure and
// the __Host- prefix (session.Config.AllowInsecureCookies): only for
// plain HTTP in development. Plain HTTP behind a TLS-terminating proxy on
// this machine, whose browsers use the https:// origin, is not
// development: the session package forbids insecure cookies there (every
// request then comes from loopback, and plain-HTTP cookies would be
// accepted from anyone the proxy forwards, over http:// too), so the
// cookies stay strict and sessions work only through the proxy, when its
// X-Forwarded-Proto says https. An https:// origin over plain HTTP with no
// trusted proxy could never see HTTPS: an error.
func insecureCookies(useTLS bool, cfg config) (bool, error) {
	if useTLS {
		return false, nil
	}
	if u, err := url.Parse(cfg.Origin); err == nil && strings.EqualFold(u.Scheme, "https") {
		if len(cfg.TrustedProxies) == 0 {
			return false, errors.New("the -origin is https:// but the app serves plain HTTP: name the TLS-terminating proxy in front of it with -trusted-proxy, or give -tls-cert and -tls-key")
		}
		return false, nil
	}
	return true, nil
}

// listen opens addr. Without TLS it refuses any address that is not a
// loopback one (checked on the address actually bound, so "localhost"
// and ":8080" are judged by what they resolve to): plain HTTP would send
// session cookies, passwords and notes across the network in the clear.
func listen(addr string, useTLS bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%w: another program listens on %s; choose another address with -addr, e.g. -addr 127.0.0.1:8081", err, addr)
	}
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !useTLS && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("refusing to serve plain HTTP on %s, which is not a loopback address: pass -tls-cert and -tls-key", ln.Addr())
	}
	return ln, nil
}
