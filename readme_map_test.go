package keyhold_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
)

const modulePath = "github.com/keyhold/keyhold"

var (
	readmeMapRow     = regexp.MustCompile("^\\| (?:\\[)?`([a-z/]+)`(?:\\]\\(([a-z/]+)\\))?[^|]* \\|")
	readmeExampleRef = regexp.MustCompile(`examples/([a-z0-9]+)`)
)

// readmeSection returns the lines of README.md's section "## title", up
// to the next "## " heading.
func readmeSection(t *testing.T, title string) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "## ") {
			in = line == "## "+title
			continue
		}
		if in {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("README.md has no section %q", title)
	}
	return lines
}

// goList lists the module's packages matching patterns.
func goList(t *testing.T, patterns ...string) []string {
	t.Helper()
	goTool := testenv.LookPath(t, "go", "install Go")
	out, err := exec.Command(goTool, append([]string{"list"}, patterns...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	return strings.Fields(string(out))
}

// The README's map of the packages is true to the code: it lists every
// package of the module that is API (not internal/, bench/ or examples/),
// once, each linked to its own directory, and nothing else.
func TestReadmePackageMap(t *testing.T) {
	t.Parallel()
	var api []string
	for _, p := range goList(t, "./...") {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, modulePath), "/")
		if rel == "" {
			rel = "keyhold"
		}
		if strings.Contains("/"+rel+"/", "/internal/") || strings.HasPrefix(rel, "bench") || strings.HasPrefix(rel, "examples/") {
			continue
		}
		api = append(api, rel)
	}
	listed := map[string]bool{}
	for _, line := range readmeSection(t, "Packages") {
		m := readmeMapRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, link := m[1], m[2]
		if listed[name] {
			t.Errorf("README.md's package map lists %s twice", name)
		}
		listed[name] = true
		if !slices.Contains(api, name) {
			t.Errorf("README.md's package map lists %s, which is no API package of the module", name)
		}
		if name != "keyhold" && link != name {
			t.Errorf("README.md's package map links %s to %q, want its directory", name, link)
		}
	}
	for _, p := range api {
		if !listed[p] {
			t.Errorf("package %s is missing from README.md's package map", p)
		}
	}
}

// Every example the README names exists as a main package.
func TestReadmeExamplesExist(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range readmeExampleRef.FindAllStringSubmatch(string(b), -1) {
		named[m[1]] = true
	}
	if len(named) < 2 {
		t.Fatalf("README.md names %d examples: the pattern is broken", len(named))
	}
	goTool := testenv.LookPath(t, "go", "install Go")
	for name := range named {
		out, err := exec.Command(goTool, "list", "-f", "{{.Name}}", "./examples/"+name).Output()
		if err != nil || strings.TrimSpace(string(out)) != "main" {
			t.Errorf("README.md names examples/%s, which is not a main package here (%v)", name, err)
		}
	}
}
