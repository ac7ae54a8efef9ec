// Package testenv lets keyhold's tests find the tools and services they
// need, and decide what happens when one is missing: the test is skipped
// with its reason on a developer's machine, and fails when CI=true, so CI
// can never pass by skipping. It also sizes the long campaigns: see
// [LongEnv].
package testenv

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI (the environment variable CI is
// "true").
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips t with reason, or fails it when InCI.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required in CI (CI=true): %s", reason)
	}
	t.Skipf("skipped: %s", reason)
}

// LookPath returns the absolute path of the executable name (a bare name
// looked up in PATH, or an absolute path checked for existence), or calls
// Missing with install advice.
func LookPath(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found ("+install+")")
	}
	return p
}

// Python returns Debian's /usr/bin/python3 after checking that it can
// import every module in modules, or calls Missing. Debian's interpreter is
// used on purpose: the Debian packages python3-* install into it, not into
// a python3 that a version manager may put first on PATH.
func Python(t testing.TB, debianPackages string, modules ...string) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		Missing(t, py+" not found (apt-get install python3 "+debianPackages+")")
	}
	for _, m := range modules {
		if err := exec.Command(py, "-c", "import "+m).Run(); err != nil {
			Missing(t, "python module "+m+" not importable by "+py+" (apt-get install "+debianPackages+")")
		}
	}
	return py
}

// Env returns the value of the environment variable name, or calls Missing
// saying what it is for.
func Env(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, name+" is not set ("+what+")")
	}
	return v
}

// LongEnv is the environment variable that turns on the long test
// campaigns: KEYHOLD_LONG_TESTS=1 makes the tests that repeat work to find
// rare failures (the crash test's hundreds of SIGKILLs, the largest KDF
// vectors, the full conformance runs, long randomized loops) run at their
// full size. .ci/run sets it. Without it, the same tests run at a small
// size that still exercises every behaviour, so that `go test ./...`
// stays fast; no test is skipped for want of it.
const LongEnv = "KEYHOLD_LONG_TESTS"

// Long reports whether the long campaigns run (LongEnv is "1").
func Long() bool { return os.Getenv(LongEnv) == "1" }

// Size returns long when the long campaigns run, else short, and logs the
// choice in short mode so that a reader of -v output knows the size ran.
func Size(t testing.TB, short, long int) int {
	t.Helper()
	if Long() {
		return long
	}
	t.Logf("short mode: %d instead of %d (%s=1 for the full size)", short, long, LongEnv)
	return short
}

// ServiceMain is for a TestMain of a package whose tests need a service
// named by the environment variable env: when env is unset (and not
// InCI, where the tests fail instead), it prints one line,
// "<pkg>: <env> unset: <service> tests skipped", before running the tests.
// It parses the test flags (call it first in TestMain, before m.Run).
//
// go test ./... throws away the output of a package that passes, unless
// -v; so that the line still shows there, it goes to the go command's
// standard output when that is a terminal or a pipe (Linux, through
// /proc), and to the test's own otherwise. A cached result prints no line.
func ServiceMain(pkg, env, service string) {
	if os.Getenv(env) != "" || InCI() {
		return
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	line := fmt.Sprintf("%s: %s unset: %s tests skipped\n", pkg, env, service)
	if !testing.Verbose() && toParent(line) {
		return
	}
	fmt.Print(line)
}

// toParent writes line to the parent process's standard output if that is
// a terminal or a pipe other than this process's own, and reports whether
// it did. (Not a regular file: the parent's writes at its own offset would
// overwrite the line.)
func toParent(line string) bool {
	path := fmt.Sprintf("/proc/%d/fd/1", os.Getppid())
	theirs, err := os.Stat(path)
	if err != nil || theirs.Mode()&(fs.ModeNamedPipe|fs.ModeCharDevice) == 0 {
		return false
	}
	if ours, err := os.Stdout.Stat(); err == nil && os.SameFile(ours, theirs) {
		return false
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.WriteString(line)
	return err == nil
}

// Environment variables and defaults for [Browser]. .ci/run installs
// Debian's chromium and playwright-core at PlaywrightCoreVersion (from npm,
// into PlaywrightCoreDefaultDir) and sets both variables.
const (
	// ChromiumEnv names the chromium executable; unset, DefaultChromium.
	ChromiumEnv = "KEYHOLD_CHROMIUM"
	// DefaultChromium is where Debian's chromium package puts its launcher.
	DefaultChromium = "/usr/bin/chromium"
	// PlaywrightCoreEnv names a directory holding
	// node_modules/playwright-core; unset, PlaywrightCoreDefaultDir().
	PlaywrightCoreEnv = "KEYHOLD_PLAYWRIGHT_CORE"
	// PlaywrightCoreVersion is the playwright-core release .ci/run
	// installs: the one built against the Chromium major version Debian
	// ships (156). Keep in step with PLAYWRIGHT_CORE_VERSION in .ci/run.
	PlaywrightCoreVersion = "1.64.1"
)

// PlaywrightCoreDefaultDir is where .ci/run caches playwright-core:
// ${XDG_CACHE_HOME:-$HOME/.cache}/keyhold-ci/playwright-core-<version>.
func PlaywrightCoreDefaultDir() string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	return filepath.Join(cache, "keyhold-ci", "playwright-core-"+PlaywrightCoreVersion)
}

// Browser returns what the real-browser tests run: node (from PATH), the
// directory whose node_modules/playwright-core a script can require
// ([PlaywrightCoreEnv], else [PlaywrightCoreDefaultDir]) and the chromium
// executable ([ChromiumEnv], else [DefaultChromium]). Whatever is missing
// calls [Missing] with install advice: skipped on a developer's machine,
// a failure in CI.
func Browser(t testing.TB) (node, playwrightDir, chromium string) {
	t.Helper()
	node = LookPath(t, "node", "apt-get install nodejs")
	chromium = os.Getenv(ChromiumEnv)
	if chromium == "" {
		chromium = DefaultChromium
	}
	if fi, err := os.Stat(chromium); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		Missing(t, "chromium not found at "+chromium+" (apt-get install chromium, or set "+ChromiumEnv+")")
	}
	playwrightDir = os.Getenv(PlaywrightCoreEnv)
	if playwrightDir == "" {
		playwrightDir = PlaywrightCoreDefaultDir()
	}
	if _, err := os.Stat(filepath.Join(playwrightDir, "node_modules", "playwright-core", "package.json")); err != nil {
		Missing(t, "playwright-core not found in "+filepath.Join(playwrightDir, "node_modules")+
			" (npm install --prefix "+playwrightDir+" playwright-core@"+PlaywrightCoreVersion+
			", or set "+PlaywrightCoreEnv+" to a directory holding node_modules/playwright-core; bash .ci/run installs it)")
	}
	return node, playwrightDir, chromium
}

// Node returns the path of node, 20 or later (the first with WebCrypto on
// globalThis and String.prototype.isWellFormed), or skips the test (fails
// it in CI) when there is none.
func Node(t testing.TB) string {
	t.Helper()
	node := LookPath(t, "node", "apt-get install nodejs")
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < 20 {
		Missing(t, "node "+v+" is older than 20 (apt-get install nodejs from a current source)")
	}
	return node
}
