// Package testenv lets keyhold's tests find the tools and services they
// need, and decide what happens when one is missing: the test is skipped
// with its reason on a developer's machine, and fails when CI=true, so CI
// can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
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
