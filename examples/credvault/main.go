// Command credvault is a JSON API that keeps users' third-party
// credentials (site, username, password, notes) sealed under a vault of
// their own, in the shape of the self-hosted credential vaults many users
// come from: log in, set a master passphrase, unlock, lock, log out, a
// security-status endpoint, and an import of the credentials file such a
// system writes (Fernet tokens under a key from PBKDF2-SHA256 at 480,000
// iterations with a 16-byte salt). It keeps that system's passphrase rule
// (12 or more characters with a lowercase and an uppercase letter, a digit
// and a symbol: kdf.LegacyCompositionPolicy) and its 30-minute idle lock
// (session.Config.LockAfter): after 30 minutes without a request the
// session's copy of the vault's keys is wiped, and the user unlocks again.
// Every request counts, GET /api/security/status too: a client that polls
// it for the countdown keeps the vault open for as long as it polls, so
// ask once and count down to its locks_at.
//
// What differs from such a system: the passphrase never leaves the request
// that carries it (the session keeps the vault's keys sealed under a key
// derived from its cookie, which the server does not store); each
// credential is sealed with AES-256-GCM under a random per-user master key
// (the passphrase only wraps it, through Argon2id), bound to the user and to
// the credential's ID, so that a record moved to another row or another
// user does not open; an account has a login password of its own
// (Argon2id hash); logins and unlocks are rate-limited and share a
// lockout.
//
// Run it from the repository's root:
//
//	go run ./examples/credvault
//
// It listens on 127.0.0.1:8091 (-addr) over plain HTTP, which it serves
// only on a loopback address (the session cookie then lacks the Secure
// flag: session.Config.AllowInsecureCookies), and keeps everything in
// ./credvault.db (-db), created with mode 0600.
//
// # API
//
// Every request that changes state is a POST, PUT or DELETE with
// Content-Type: application/json; others get 415. That is the API's
// protection against cross-site request forgery: a page on another site
// can make a browser send the user's cookie with a form's or text/plain
// body, but a JSON body only after a CORS preflight, which this server
// never grants. The SameSite=Lax cookie and CrossOriginProtection (which
// refuses what browsers mark cross-site) are further layers. Bodies are at most 16 KiB
// (an import's 68 KiB); larger ones get 413. Errors are
// {"error": {"code": "...", "message": "..."}} with a 4xx status: 400
// invalid input, 401 not logged in or a wrong password or passphrase, 403
// a cross-site request, 404, 409 (a vault exists already, none yet, or
// it is full: 1000 credentials), 413, 415, 421 a request to a host other
// than a loopback address (127.0.0.0/8, ::1) or localhost (a page on
// another name pointed at this machine: DNS rebinding), 422 a password or passphrase
// the policy refuses (with "reasons") or a stored credential that does not
// open (altered, or moved from another row or user), 423 the vault is
// locked, 429 rate-limited (with Retry-After); 503 when the KDF is busy.
//
//	POST   /api/signup               {"username", "password"}  account, logged in (password: 15+ characters)
//	POST   /api/login                {"username", "password"}  logged in, vault locked (5 per 15 min per address)
//	POST   /api/passphrase           {"passphrase"}            creates the vault, unlocked
//	POST   /api/import               {"passphrase", "file", "site"}  creates the vault from a credentials file, unlocked
//	POST   /api/unlock               {"passphrase"}            unlocks the vault
//	POST   /api/unlock               {"recovery_key"}          unlocks with a recovery key, used up: answers its replacement (an error too)
//	POST   /api/recovery-key         {"passphrase"}            a new recovery key (replacing any), shown once
//	POST   /api/lock                                           locks it (the login stays)
//	POST   /api/logout                                         ends the session
//	GET    /api/security/status                                what is locked, idle time left (to within a minute), slots,
//	                                                           recovery keys, KDF parameters (new slots, logins, imports), policy
//	GET    /api/credentials                                    list (site and username only)
//	POST   /api/credentials          {"site", "username", "password", "notes"}
//	GET    /api/credentials/{id}                               one, with its password
//	PUT    /api/credentials/{id}     {"site", "username", "password", "notes"}
//	DELETE /api/credentials/{id}
//
// With curl (the cookie jar keeps the session; ids are from the answers;
// the passwords are examples: a real one typed on a command line stays in
// the shell's history and shows in ps, so read it with read -rs and pass
// it through the environment, as the import below does):
//
//	umask 077   # jar.txt will hold the session cookie
//	J='Content-Type: application/json'; C='-sS -b jar.txt -c jar.txt'; B=http://127.0.0.1:8091
//	curl $C -H "$J" $B/api/signup -d '{"username":"ada","password":"velvet otter learns calculus"}'
//	curl $C -H "$J" $B/api/passphrase -d '{"passphrase":"Quartz-Lantern-47!"}'
//	curl $C -H "$J" $B/api/credentials -d '{"site":"example.com","username":"ada@example.com","password":"s3cret!","notes":""}'
//	curl $C $B/api/credentials
//	curl $C $B/api/security/status
//	curl $C -H "$J" -X POST $B/api/lock
//	curl $C $B/api/credentials                                    # 423: locked
//	curl $C -H "$J" $B/api/unlock -d '{"passphrase":"Quartz-Lantern-47!"}'
//	curl $C -H "$J" -X POST $B/api/logout
//
// To import a credentials file (a new account, which has no vault yet),
// jq builds the body around the file and takes the passphrase from its
// environment, never from its arguments, which every local user can read
// (ps):
//
//	curl $C -H "$J" $B/api/signup -d '{"username":"grace","password":"mauve heron files taxes early"}'
//	read -rs OLD_PASSPHRASE   # the passphrase the file was encrypted under
//	OLD_PASSPHRASE="$OLD_PASSPHRASE" jq -n --slurpfile f credentials.json '{passphrase: env.OLD_PASSPHRASE, file: $f[0], site: "monarchmoney.com"}' |
//	  curl $C -H "$J" $B/api/import -d @-
//
// The file is the JSON object of FORMAT.md §3.5 ({"encrypted": true,
// "version": "1.0", "salt", "email", "password", "mfa_secret"}). keyhold
// checks the passphrase against it, creates the vault with the same
// passphrase, and the file's login becomes one credential (its email as
// the username, its MFA secret as mfa_secret). A wrong passphrase, or an
// altered file, leaves nothing behind. Delete the old file afterwards.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "loopback address to listen on (plain HTTP)")
	dbPath := flag.String("db", "credvault.db", "SQLite database file (created with mode 0600)")
	flag.Parse()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*addr, config{DBPath: *dbPath, Logger: logger, InsecureCookies: true}); err != nil {
		logger.Error("credvault.failed", "error", err)
		os.Exit(1)
	}
}

func run(addr string, cfg config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// Plain HTTP sends passwords and cookies in the clear: only on a
	// loopback address (checked on the address bound).
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("refusing to serve plain HTTP on %s, which is not a loopback address", ln.Addr())
	}
	a, err := newApp(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	cfg.Logger.Info("credvault.listening", "url", "http://"+ln.Addr().String()+"/api/", "db", cfg.DBPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
