// Package browsertest runs scripts in a real browser for keyhold's tests:
// Debian's chromium, driven by playwright-core from npm through node (found
// by testenv.Browser: a test skips when they are missing, and fails in CI),
// with a CDP virtual authenticator on the page, so that WebAuthn ceremonies
// (passkeys, the PRF extension) run end to end without a person or a
// security key.
//
// A [Session] is one chromium, one browser context and one page; [Start]
// launches it, [Session.Eval] runs the body of an async JavaScript function
// in node with playwright-core's page (and the CDP session that holds the
// authenticator) in scope, and returns what it returns, as JSON. Launch one
// session per test: a launch costs about a second. What the pages write to
// their console, their uncaught errors and the server's 5xx answers are
// kept ([Session.Console]) and logged when the test fails.
//
// WebAuthn needs a secure context: serve the pages with [ServeLocalhost],
// which binds 127.0.0.1 and returns an http://localhost:PORT address (a
// potentially trustworthy origin), with RP ID "localhost".
package browsertest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/testenv"
)

//go:embed runner.js
var runnerJS []byte

// Authenticator holds the options of a CDP virtual authenticator
// (WebAuthn.VirtualAuthenticatorOptions in the Chrome DevTools Protocol).
type Authenticator struct {
	// Protocol is "ctap2" or "u2f".
	Protocol string `json:"protocol"`
	// Ctap2Version is "ctap2_0" or "ctap2_1".
	Ctap2Version string `json:"ctap2Version,omitempty"`
	// Transport is "internal" (a platform authenticator), "usb", "nfc",
	// "ble" or "cable".
	Transport string `json:"transport"`
	// HasResidentKey lets it keep discoverable credentials.
	HasResidentKey bool `json:"hasResidentKey"`
	// HasUserVerification lets it verify the user.
	HasUserVerification bool `json:"hasUserVerification"`
	// HasPrf gives it the PRF extension (hmac-secret).
	HasPrf bool `json:"hasPrf"`
	// IsUserVerified makes every user verification succeed.
	IsUserVerified bool `json:"isUserVerified"`
	// AutomaticPresenceSimulation answers every request without a touch.
	AutomaticPresenceSimulation bool `json:"automaticPresenceSimulation"`
	// DefaultBackupEligibility is the BE flag of new credentials.
	DefaultBackupEligibility bool `json:"defaultBackupEligibility"`
	// DefaultBackupState is the BS flag of new credentials.
	DefaultBackupState bool `json:"defaultBackupState"`
}

// Passkey returns the authenticator of issue 13: a CTAP 2.1 platform
// authenticator with discoverable credentials, user verification that
// succeeds, the PRF extension, and presence given without a touch.
func Passkey() Authenticator {
	return Authenticator{
		Protocol:                    "ctap2",
		Ctap2Version:                "ctap2_1",
		Transport:                   "internal",
		HasResidentKey:              true,
		HasUserVerification:         true,
		HasPrf:                      true,
		IsUserVerified:              true,
		AutomaticPresenceSimulation: true,
	}
}

// Viewport is the size of the page in CSS pixels.
type Viewport struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Options configure a [Session]. The zero value is a session with the
// [Passkey] authenticator, playwright-core's default viewport and the
// default timeouts.
type Options struct {
	// Authenticator is the virtual authenticator added to the page; nil
	// means Passkey().
	Authenticator *Authenticator
	// NoAuthenticator adds none (WebAuthn calls then wait for a real one
	// until their timeout).
	NoAuthenticator bool
	// Viewport, if set, sizes the page (a phone is 390 wide).
	Viewport *Viewport
	// Timeout bounds the whole session, launch included; when it passes,
	// the browser is killed and Eval returns an error. Default 60s.
	Timeout time.Duration
	// ActionTimeout is playwright-core's default timeout for each action
	// and navigation of a script. Default 10s.
	ActionTimeout time.Duration
}

// ConsoleMessage is one line a page wrote to its console (Level "log",
// "warning", "error", ...), one uncaught error of a page (Level
// "pageerror"), or one answer of status 500 or above (Level "http").
type ConsoleMessage struct {
	Level string `json:"level"`
	Text  string `json:"text"`
	URL   string `json:"url"`
	Line  int    `json:"line"`
}

// String formats m for a log line: level, text and where.
func (m ConsoleMessage) String() string {
	if m.URL == "" {
		return m.Level + ": " + m.Text
	}
	return m.Level + ": " + m.Text + " (" + m.URL + ":" + strconv.Itoa(m.Line) + ")"
}

// ErrEnded is returned by [Session.Eval] once the browser has ended: closed,
// killed at the session's timeout, or crashed.
var ErrEnded = errors.New("browsertest: browser session ended")

// ScriptError is a JavaScript exception that a script threw (or a
// playwright-core action that failed, such as a timeout), with its stack.
type ScriptError struct {
	Message string
}

// Error returns the message with its stack.
func (e *ScriptError) Error() string { return "browsertest: script failed: " + e.Message }

// Limits on what a session keeps of its browser's output.
const (
	maxConsole   = 10000   // messages kept
	maxStderr    = 1 << 16 // bytes of node's and chromium's output kept
	maxReplyLine = 64 << 20
)

// Session is one chromium with one page, driven by node. Its methods may be
// called from several goroutines; Evals run one at a time.
type Session struct {
	t       testing.TB
	cmd     *exec.Cmd
	ctx     context.Context // the session's lifetime
	timeout time.Duration
	cancel  context.CancelFunc
	stdin   io.WriteCloser
	output  *tailBuffer

	ready             readyMsg
	exited            chan struct{} // closed when node has exited
	readerDone        chan struct{} // closed when the reply reader has ended
	results           chan reply
	evalMu            sync.Mutex
	nextID            int
	mu                sync.Mutex
	console           []ConsoleMessage
	droppedConsole    int
	fatal             string
	waitErr           error
	killed            bool // by Eval's context
	closeCalled       bool // Close has returned closeErr to a caller
	closeOnce         sync.Once
	closeErr          error
	replyReadDeadline time.Duration
}

type readyMsg struct {
	BrowserVersion    string `json:"browserVersion"`
	PlaywrightVersion string `json:"playwrightVersion"`
	AuthenticatorID   string `json:"authenticatorId"`
}

type reply struct {
	Type  string          `json:"type"`
	ID    int             `json:"id"`
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
	ConsoleMessage
	readyMsg
}

type command struct {
	ID   int             `json:"id"`
	Body string          `json:"body"`
	Arg  json.RawMessage `json:"arg"`
}

type config struct {
	PlaywrightDir   string         `json:"playwrightDir"`
	Chromium        string         `json:"chromium"`
	Authenticator   *Authenticator `json:"authenticator,omitempty"`
	Viewport        *Viewport      `json:"viewport,omitempty"`
	LaunchTimeoutMs int64          `json:"launchTimeoutMs"`
	ActionTimeoutMs int64          `json:"actionTimeoutMs"`
}

// Start launches chromium and opens its page, with the virtual
// authenticator of opts. It skips t (fails it in CI) when node, chromium or
// playwright-core are missing, and fails t when the browser does not start.
// The session is closed when t ends; what the browser logged is then
// logged if t failed.
func Start(t testing.TB, opts Options) *Session {
	t.Helper()
	node, playwrightDir, chromium := testenv.Browser(t)
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.ActionTimeout <= 0 {
		opts.ActionTimeout = 10 * time.Second
	}
	cfg := config{
		PlaywrightDir:   playwrightDir,
		Chromium:        chromium,
		Viewport:        opts.Viewport,
		LaunchTimeoutMs: min(opts.Timeout, 30*time.Second).Milliseconds(),
		ActionTimeoutMs: opts.ActionTimeout.Milliseconds(),
	}
	if !opts.NoAuthenticator {
		a := Passkey()
		if opts.Authenticator != nil {
			a = *opts.Authenticator
		}
		cfg.Authenticator = &a
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "runner.js")
	if err := os.WriteFile(script, runnerJS, 0o600); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	tmp := filepath.Join(dir, "tmp") // chromium's profile and files
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	replyR, replyW, err := os.Pipe()
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(), "KEYHOLD_BROWSERTEST_CONFIG="+string(cfgJSON), "TMPDIR="+tmp)
	cmd.Dir = dir
	// SIGTERM first: the runner exits and playwright-core's exit handler
	// kills the browser's process group; SIGKILL 5s later if it has not.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	cmd.ExtraFiles = []*os.File{replyW}
	s := &Session{
		t:                 t,
		cmd:               cmd,
		ctx:               ctx,
		timeout:           opts.Timeout,
		cancel:            cancel,
		output:            &tailBuffer{max: maxStderr},
		exited:            make(chan struct{}),
		readerDone:        make(chan struct{}),
		results:           make(chan reply, 1),
		replyReadDeadline: 2 * time.Second,
	}
	cmd.Stdout = s.output
	cmd.Stderr = s.output
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatalf("browsertest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("browsertest: starting node: %v", err)
	}
	replyW.Close()
	readyCh := make(chan readyMsg, 1)
	go s.readReplies(replyR, readyCh)
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(s.exited)
		// Replies written before the exit are still in the pipe: give the
		// reader time to drain them, then unblock it if something (a
		// grandchild) still holds the pipe open.
		select {
		case <-s.readerDone:
		case <-time.After(s.replyReadDeadline):
			replyR.Close()
		}
	}()
	t.Cleanup(s.cleanup)

	select {
	case r := <-readyCh:
		s.ready = r
	case <-s.readerDone:
		s.Close()
		t.Fatalf("browsertest: browser did not start: %s", s.endReason())
	}
	return s
}

// readReplies reads the runner's replies until the pipe closes.
func (s *Session) readReplies(r *os.File, readyCh chan<- readyMsg) {
	defer close(s.readerDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxReplyLine)
	for sc.Scan() {
		var m reply
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			s.setFatal("unreadable reply: " + err.Error())
			continue
		}
		switch m.Type {
		case "ready":
			readyCh <- m.readyMsg
		case "result":
			s.results <- m
		case "console":
			s.mu.Lock()
			if len(s.console) < maxConsole {
				s.console = append(s.console, m.ConsoleMessage)
			} else {
				s.droppedConsole++
			}
			s.mu.Unlock()
		case "fatal":
			s.setFatal(m.Error)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		s.setFatal("reading replies: " + err.Error())
	}
}

func (s *Session) setFatal(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal == "" {
		s.fatal = msg
	}
}

// endReason says why the browser ended, for errors.
func (s *Session) endReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	if errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
		parts = append(parts, fmt.Sprintf("the session's timeout (%v) passed", s.timeout))
	}
	if s.fatal != "" {
		parts = append(parts, s.fatal)
	}
	if s.waitErr != nil {
		parts = append(parts, "node: "+s.waitErr.Error())
	}
	if out := strings.TrimSpace(s.output.String()); out != "" {
		parts = append(parts, "output:\n"+out)
	}
	if len(parts) == 0 {
		return "no reason given"
	}
	return strings.Join(parts, "; ")
}

// BrowserVersion is the version chromium reports, such as "156.0.8078.129".
func (s *Session) BrowserVersion() string { return s.ready.BrowserVersion }

// PlaywrightVersion is the version of playwright-core driving it.
func (s *Session) PlaywrightVersion() string { return s.ready.PlaywrightVersion }

// AuthenticatorID is the CDP id of the page's virtual authenticator ("" when
// Options.NoAuthenticator); scripts have it as authenticatorId.
func (s *Session) AuthenticatorID() string { return s.ready.AuthenticatorID }

// Console returns a copy of what the pages logged so far (at most 10,000
// messages).
func (s *Session) Console() []ConsoleMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ConsoleMessage(nil), s.console...)
}

// Eval runs body, the body of an async JavaScript function, in node, and
// returns its result as JSON ("null" for undefined). In scope are page,
// context and browser (playwright-core's Page, BrowserContext and Browser),
// cdp (the CDPSession of page holding the virtual authenticator, or null),
// authenticatorId, and arg (arg marshaled to JSON). The virtual
// authenticator belongs to page (and stays across its navigations); a page
// the script opens itself has none unless it adds one with its own
// context.newCDPSession. A script that throws
// returns a *[ScriptError]. When ctx ends first, the session is killed and
// every later Eval returns [ErrEnded].
//
//	v, err := s.Eval(ctx, `await page.goto(arg); return await page.title()`, url)
func (s *Session) Eval(ctx context.Context, body string, arg any) (json.RawMessage, error) {
	argJSON, err := json.Marshal(arg)
	if err != nil {
		return nil, fmt.Errorf("browsertest: arg: %w", err)
	}
	s.evalMu.Lock()
	defer s.evalMu.Unlock()
	select {
	case <-s.exited:
		return nil, fmt.Errorf("%w: %s", ErrEnded, s.endReason())
	default:
	}
	s.nextID++
	id := s.nextID
	line, err := json.Marshal(command{ID: id, Body: body, Arg: argJSON})
	if err != nil {
		return nil, fmt.Errorf("browsertest: %w", err)
	}
	if _, err := s.stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrEnded, s.endReason())
	}
	select {
	case r := <-s.results:
		return r.result(id)
	case <-s.exited:
		<-s.readerDone
		select {
		case r := <-s.results:
			return r.result(id)
		default:
		}
		return nil, fmt.Errorf("%w: %s", ErrEnded, s.endReason())
	case <-ctx.Done():
		s.kill()
		return nil, fmt.Errorf("browsertest: script did not finish: %w", ctx.Err())
	}
}

func (r reply) result(id int) (json.RawMessage, error) {
	if r.ID != id {
		return nil, fmt.Errorf("browsertest: reply to command %d, want %d", r.ID, id)
	}
	if !r.OK {
		return nil, &ScriptError{Message: r.Error}
	}
	return r.Value, nil
}

// kill ends the browser at once and waits for it.
func (s *Session) kill() {
	s.mu.Lock()
	s.killed = true
	s.mu.Unlock()
	s.cancel()
	<-s.exited
}

// Close closes the browser (it is closed when the test ends anyway) and
// waits for it, at most 10s before it is killed. It returns an error when
// the browser had failed or did not close cleanly (not when an Eval's
// context or the session's timeout killed it: Eval has returned that).
func (s *Session) Close() error {
	s.mu.Lock()
	s.closeCalled = true
	s.mu.Unlock()
	return s.close()
}

func (s *Session) close() error {
	s.closeOnce.Do(func() {
		s.stdin.Close()
		stuck := false
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			stuck = true
			s.kill()
		}
		s.cancel()
		<-s.readerDone
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case s.fatal != "":
			s.closeErr = errors.New("browsertest: " + s.fatal)
		case stuck:
			s.closeErr = errors.New("browsertest: the browser did not close within 10s, killed")
		case s.waitErr != nil && !s.killed && !errors.Is(s.ctx.Err(), context.DeadlineExceeded):
			s.closeErr = fmt.Errorf("browsertest: browser did not close cleanly: %w", s.waitErr)
		}
	})
	return s.closeErr
}

func (s *Session) cleanup() {
	err := s.close()
	s.mu.Lock()
	reported := s.closeCalled
	s.mu.Unlock()
	if err != nil && !reported {
		s.t.Errorf("%v", err)
	}
	if !s.t.Failed() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Logf("browsertest: chromium %s, playwright-core %s", s.ready.BrowserVersion, s.ready.PlaywrightVersion)
	for _, m := range s.console {
		s.t.Logf("browser console: %s", m)
	}
	if s.droppedConsole > 0 {
		s.t.Logf("browser console: %d more messages dropped", s.droppedConsole)
	}
	if out := strings.TrimSpace(s.output.String()); out != "" {
		s.t.Logf("node and chromium output (last %d bytes kept):\n%s", maxStderr, out)
	}
}

// Run starts a session with opts, runs one script in it (see
// [Session.Eval]) and closes it.
func Run(ctx context.Context, t testing.TB, opts Options, body string, arg any) (json.RawMessage, error) {
	t.Helper()
	s := Start(t, opts)
	v, err := s.Eval(ctx, body, arg)
	if cerr := s.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	return v, err
}

// ServeLocalhost serves h on 127.0.0.1 until t ends and returns its address
// as "http://localhost:PORT": a secure context for WebAuthn, whose RP ID is
// "localhost".
func ServeLocalhost(t testing.TB, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "http://localhost:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) > b.max {
		p = p[len(p)-b.max:]
	}
	if over := b.buf.Len() + len(p) - b.max; over > 0 {
		b.buf.Next(over)
	}
	b.buf.Write(p)
	return n, nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
