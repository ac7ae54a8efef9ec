package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// moduleRoot returns the directory of keyhold's go.mod, found from the
// working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/keyhold/keyhold\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("keyhold's go.mod not found above the working directory: run from the repository")
		}
		dir = parent
	}
}

// binaries are the programs a run starts, built into a temporary
// directory (never the repository's tree).
type binaries struct {
	webapp string // examples/webapp
	bare   string // bench/cmd/loadgen/bareserver
}

// build compiles the web app and the bare server into dir.
func build(ctx context.Context, dir string) (binaries, error) {
	root, err := moduleRoot()
	if err != nil {
		return binaries{}, err
	}
	b := binaries{webapp: filepath.Join(dir, "webapp"), bare: filepath.Join(dir, "bareserver")}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./examples/webapp", "./bench/cmd/loadgen/bareserver")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return b, nil
}

// A proc is a server started by the run: the web app or the bare server.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string // its standard error
	addr    string // host:port it listens on
	done    chan struct{}
	waitErr error
}

// startProc starts bin with args, its standard error going to logPath,
// and waits until it logs its listening address: a line holding ready,
// from which addrOf extracts host:port.
func startProc(ctx context.Context, name, bin string, args []string, dir, logPath, ready string, addrOf func(line []byte) string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own process group, so that a Ctrl-C in the terminal reaches
	// the load generator only, which stops it and cleans up; and killed
	// if the load generator dies without doing so.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(2 * time.Minute) // a busy machine, or PostgreSQL creating tables
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before listening (%v): %s", name, p.waitErr, tail(logPath))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		b, _ := os.ReadFile(logPath)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if bytes.Contains(sc.Bytes(), []byte(ready)) {
				if p.addr = addrOf(sc.Bytes()); p.addr != "" {
					return p, nil
				}
			}
		}
	}
	p.stop()
	return nil, fmt.Errorf("%s did not log %q within 2 minutes: %s", name, ready, tail(logPath))
}

// startWebapp starts the web app on a free loopback port (the kernel
// picks it: -addr 127.0.0.1:0), with its files in dir.
func startWebapp(ctx context.Context, bin, dir string, st storage) (*proc, error) {
	args := []string{"-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "webapp.db"), "-totp-key", filepath.Join(dir, "webapp.totp-key")}
	if st.dsn != "" {
		args = append(args, "-postgres", st.dsn)
	}
	if st.redisURL != "" {
		args = append(args, "-redis", st.redisURL, "-redis-prefix", st.redisPrefix)
	}
	return startProc(ctx, "webapp", bin, args, dir, filepath.Join(dir, "webapp.log"), `"webapp.listening"`, func(line []byte) string {
		var ev struct {
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &ev) != nil {
			return ""
		}
		return ev.Addr
	})
}

// startBare starts the bare server on a free loopback port, serving the
// body and headers in the files given.
func startBare(ctx context.Context, bin, dir, bodyFile, headerFile string) (*proc, error) {
	args := []string{"-addr", "127.0.0.1:0", "-body", bodyFile, "-headers", headerFile}
	return startProc(ctx, "bareserver", bin, args, dir, filepath.Join(dir, "bareserver.log"), "bareserver listening on ", func(line []byte) string {
		_, addr, _ := strings.Cut(string(line), "bareserver listening on ")
		return strings.TrimSpace(addr)
	})
}

// stop sends SIGTERM (the web app then shuts down gracefully), waits up
// to 15 s, then kills. Safe to call more than once.
func (p *proc) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// status returns a field of /proc/PID/status in KiB (VmHWM, VmRSS).
func (p *proc) status(field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, p.cmd.Process.Pid)
}

// resetPeak resets the process's VmHWM to its current resident size
// (writing 5 to /proc/PID/clear_refs, Linux 4.0 and later).
func (p *proc) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// logProblems returns the lines of the process's standard error that
// show a panic, a fatal runtime error or an unexpected server error
// (webapp.error: the app's 500 page), at most 10 of them, and their count.
func logProblems(path string) (lines []string, n int) {
	b, _ := os.ReadFile(path)
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") ||
			strings.Contains(line, `"msg":"webapp.error"`) || strings.Contains(line, "http: panic serving") {
			n++
			if len(lines) < 10 {
				lines = append(lines, line)
			}
		}
	}
	return lines, n
}

// tail returns the last 2 KiB of a file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}
