package keyhold_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// requirementsFile is the security requirements checklist, kept beside the
// repository (issue 11 names it as ../shared/SECURITY-REQUIREMENTS.md).
const requirementsFile = "../shared/SECURITY-REQUIREMENTS.md"

// requirementCounts is the checklist's "Count per package" line: the table
// must list exactly these IDs (prefix-01 … prefix-n) even where the
// checklist file is not beside the repository.
var requirementCounts = map[string]int{"KDF": 17, "VLT": 18, "SES": 27, "TOT": 15, "PKY": 16, "RL": 12, "STO": 7, "X": 7}

// requirementStatuses are the words the table's status column may hold.
var requirementStatuses = map[string]bool{"met": true, "partial": true, "not met": true, "planned": true, "n/a": true}

var (
	requirementIDRe   = regexp.MustCompile(`^(KDF|VLT|SES|TOT|PKY|RL|STO|X)-([0-9]{2})$`)
	checklistRowRe    = regexp.MustCompile(`^\| ((?:KDF|VLT|SES|TOT|PKY|RL|STO|X)-[0-9]{2}) \|`)
	requirementTestRe = regexp.MustCompile("`([a-z][a-z0-9_/]*)\\.(Test[A-Za-z0-9_]*)((?:/[^`/]+)*)`")
)

// requirementRow is one row of SECURITY.md's "Requirements and their
// tests" table.
type requirementRow struct {
	line   int
	id     string
	status string
	tests  string // the tests cell
	note   string
}

// requirementRows reads the table of SECURITY.md's "Requirements and their
// tests" section.
func requirementRows(t *testing.T) []requirementRow {
	t.Helper()
	f, err := os.Open("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []requirementRow
	in := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Requirements and their tests"
			continue
		}
		if !in || !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "| "), " |"), " | ")
		if cells[0] == "ID" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		if len(cells) != 4 {
			t.Errorf("SECURITY.md:%d: %d cells, want 4 (ID, status, tests, note): %s", n, len(cells), line)
			continue
		}
		rows = append(rows, requirementRow{line: n, id: cells[0], status: cells[1], tests: cells[2], note: cells[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal(`SECURITY.md has no "## Requirements and their tests" table`)
	}
	return rows
}

// checklistIDs returns the requirement IDs of the checklist file, or nil
// if it is not beside the repository.
func checklistIDs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(requirementsFile)
	if os.IsNotExist(err) {
		t.Logf("%s not found: checking the table against the checklist's counts only", requirementsFile)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for line := range strings.Lines(string(b)) {
		if m := checklistRowRe.FindStringSubmatch(line); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// TestRequirementsTable checks SECURITY.md's "Requirements and their
// tests" table: every requirement ID of the checklist is listed exactly
// once, with a known status; a met or partial requirement names at least
// one test, and anything else says why in its note; and every test it names
// is a function of that package's _test.go files (a subtest after a slash
// must appear as a string in that package's tests, or in storagetest for
// the conformance clauses).
func TestRequirementsTable(t *testing.T) {
	rows := requirementRows(t)

	want := map[string]bool{}
	for prefix, n := range requirementCounts {
		for i := 1; i <= n; i++ {
			want[fmt.Sprintf("%s-%02d", prefix, i)] = true
		}
	}
	if ids := checklistIDs(t); ids != nil {
		fromFile := map[string]bool{}
		for _, id := range ids {
			if fromFile[id] {
				t.Errorf("%s lists %s twice", requirementsFile, id)
			}
			fromFile[id] = true
			if !want[id] {
				t.Errorf("%s has %s, which requirementCounts does not: update it", requirementsFile, id)
			}
		}
		for id := range want {
			if !fromFile[id] {
				t.Errorf("requirementCounts has %s, which %s does not: update it", id, requirementsFile)
			}
		}
	}

	seen := map[string]int{}
	for _, r := range rows {
		if !requirementIDRe.MatchString(r.id) || !want[r.id] {
			t.Errorf("SECURITY.md:%d: %q is not a requirement ID of the checklist", r.line, r.id)
		}
		if prev, ok := seen[r.id]; ok {
			t.Errorf("SECURITY.md:%d: %s listed again (first at line %d)", r.line, r.id, prev)
		}
		seen[r.id] = r.line
		if !requirementStatuses[r.status] {
			t.Errorf("SECURITY.md:%d: %s has status %q, want one of met, partial, not met, planned, n/a", r.line, r.id, r.status)
		}
		tests := requirementTestRe.FindAllStringSubmatch(r.tests, -1)
		switch r.status {
		case "met", "partial":
			if len(tests) == 0 {
				t.Errorf("SECURITY.md:%d: %s is %s but names no test", r.line, r.id, r.status)
			}
		default:
			if len(tests) != 0 {
				t.Errorf("SECURITY.md:%d: %s is %s but names tests: make it met or partial", r.line, r.id, r.status)
			}
		}
		if r.status != "met" && len(strings.TrimSpace(r.note)) < 10 {
			t.Errorf("SECURITY.md:%d: %s is %s and its note does not say why", r.line, r.id, r.status)
		}
		if r.status == "planned" && !strings.Contains(r.note, "planned: package ") {
			t.Errorf(`SECURITY.md:%d: %s is planned: its note must say "planned: package <name>"`, r.line, r.id)
		}
		// Every backquoted pkg.Test… in the cell must be a test reference.
		if n := strings.Count(r.tests, "`") / 2; n != len(tests) {
			t.Errorf("SECURITY.md:%d: %s: %d quoted names, %d of them read as package.TestName[/Subtest]", r.line, r.id, n, len(tests))
		}
		for _, m := range tests {
			checkRequirementTest(t, r, m[1], m[2], m[3])
		}
	}
	for id := range want {
		if _, ok := seen[id]; !ok {
			t.Errorf("SECURITY.md's requirements table does not list %s", id)
		}
	}
}

// testPackages caches the test functions and string literals of each
// package directory's _test.go files.
var testPackages = map[string]*testPackage{}

type testPackage struct {
	funcs   map[string]bool
	strings map[string]bool
}

// loadTestPackage parses the _test.go files of dir (relative to the module
// root).
func loadTestPackage(t *testing.T, dir string, withLibrary bool) *testPackage {
	t.Helper()
	key := fmt.Sprintf("%s %v", dir, withLibrary)
	if p, ok := testPackages[key]; ok {
		return p
	}
	p := &testPackage{funcs: map[string]bool{}, strings: map[string]bool{}}
	testPackages[key] = p
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		isTest := strings.HasSuffix(name, "_test.go")
		if !isTest && !withLibrary {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("parsing %s: %v", name, err)
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if isTest && n.Recv == nil && strings.HasPrefix(n.Name.Name, "Test") {
					p.funcs[n.Name.Name] = true
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					if s, err := strconv.Unquote(n.Value); err == nil {
						p.strings[s] = true
					}
				}
			}
			return true
		})
	}
	return p
}

// checkRequirementTest checks that pkg's tests have a function name, and
// that each subtest segment of sub appears as a string in pkg's tests (or
// storagetest's clause names).
func checkRequirementTest(t *testing.T, r requirementRow, pkg, name, sub string) {
	t.Helper()
	dir := pkg
	if pkg == "keyhold" {
		dir = "."
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("SECURITY.md:%d: %s names %s.%s, but there is no package directory %s", r.line, r.id, pkg, name, dir)
		return
	}
	p := loadTestPackage(t, dir, false)
	if !p.funcs[name] {
		t.Errorf("SECURITY.md:%d: %s names %s.%s, which is not a test function of %s's _test.go files", r.line, r.id, pkg, name, dir)
		return
	}
	if sub == "" {
		return
	}
	clauses := loadTestPackage(t, filepath.Join("storage", "storagetest"), true)
	for _, s := range strings.Split(strings.TrimPrefix(sub, "/"), "/") {
		if !p.strings[s] && !clauses.strings[s] {
			t.Errorf("SECURITY.md:%d: %s names %s.%s%s, but no test of %s (nor storagetest) has a subtest %q", r.line, r.id, pkg, name, sub, dir, s)
		}
	}
}
