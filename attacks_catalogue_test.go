package keyhold_test

import (
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

// catalogueSection is the heading of SECURITY.md's table of the attacks
// the tests try (issue 16).
const catalogueSection = "## Attacks the tests try"

// catalogueAttacks are issue 16's attacks: each must have at least one row
// in the table (its attack cell is the name, or the name, a colon and what
// the row covers), and at least one of its rows must name a test.
var catalogueAttacks = []string{
	"session fixation",
	"forged forwarding headers",
	"enumeration by message",
	"enumeration by timing",
	"lockout denial of service",
	"TOTP replay",
	"refresh-token reuse and revocation races",
	"recovery-code double spend",
	"ciphertext, slot and record swaps between users",
	"record rollback",
	"oversized and malformed input",
	"crafted PHC strings",
	"one account flooding the KDF",
}

// catalogueDetails are the parts of an attack that issue 16 names one by
// one: each must have a row of its own ("attack: detail").
var catalogueDetails = []string{
	"enumeration by timing: non-NFKC passwords",
	"oversized and malformed input: 1 and 10 MiB passwords",
	"oversized and malformed input: invalid UTF-8 and NUL",
	"oversized and malformed input: garbage and huge cookies and tokens",
	"oversized and malformed input: 100k form fields",
}

// catalogueNoTest starts a tests cell that names no test yet and says why:
// the row is kept (the gap shows), but the attack needs another row that
// names one.
const catalogueNoTest = "none yet:"

var catalogueTestRe = regexp.MustCompile(`^([a-z][a-z0-9_]*(?:/[a-z][a-z0-9_]*)*)\.(Test[A-Za-z0-9_]*)((?:/[^/]+)*)$`)

// catalogueProblems checks the attack catalogue of a SECURITY.md text
// against the test functions of the packages under root, and returns what
// is wrong, one problem per entry.
func catalogueProblems(md, root string) []string {
	var problems []string
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("SECURITY.md:%d: %s", line, fmt.Sprintf(format, args...)))
	}
	known := map[string]bool{}
	for _, a := range catalogueAttacks {
		known[a] = true
	}
	rowsOf := map[string]int{}  // attack cell → rows
	testsOf := map[string]int{} // attack → named tests
	funcs := catalogueParsed
	var clauses *catalogueTestPackage // storagetest's, for the conformance suite's subtests
	in, found := false, false
	for i, line := range strings.Split(md, "\n") {
		n := i + 1
		if strings.HasPrefix(line, "## ") {
			in = line == catalogueSection
			found = found || in
			continue
		}
		if !in || !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "| "), " |"), " | ")
		if len(cells) != 3 {
			bad(n, "%d cells, want 3 (attack, what must hold, tests)", len(cells))
			continue
		}
		if cells[0] == "attack" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		attack, _, _ := strings.Cut(cells[0], ": ")
		if !known[attack] {
			bad(n, "%q is not one of issue 16's attacks (catalogueAttacks)", attack)
			continue
		}
		rowsOf[cells[0]]++
		if strings.TrimSpace(cells[1]) == "" {
			bad(n, "%s: the row does not say what must hold", cells[0])
		}
		tests := strings.TrimSpace(cells[2])
		if strings.HasPrefix(tests, catalogueNoTest) {
			if len(strings.TrimSpace(strings.TrimPrefix(tests, catalogueNoTest))) < 10 {
				bad(n, "%s: %q without a reason", cells[0], catalogueNoTest)
			}
			continue
		}
		quoted := strings.Split(tests, "`")
		if len(quoted)%2 == 0 {
			bad(n, "%s: unbalanced backquotes in the tests cell", cells[0])
			continue
		}
		named := 0
		for j := 1; j < len(quoted); j += 2 {
			m := catalogueTestRe.FindStringSubmatch(quoted[j])
			if m == nil {
				bad(n, "%s: `%s` is not package/path.TestName", cells[0], quoted[j])
				continue
			}
			named++
			pkg, name, sub := m[1], m[2], m[3]
			dir := pkg
			if pkg == "keyhold" {
				dir = "."
			}
			dir = filepath.Join(root, filepath.FromSlash(dir))
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				bad(n, "%s names %s.%s, but there is no package directory %s", cells[0], pkg, name, pkg)
				continue
			}
			p, ok := funcs[dir]
			if !ok {
				var err error
				if p, err = parseTestPackage(dir, false); err != nil {
					bad(n, "%s: %v", cells[0], err)
					continue
				}
				funcs[dir] = p
			}
			if !p.funcs[name] {
				bad(n, "%s names %s.%s, which is not a test function of %s's _test.go files", cells[0], pkg, name, pkg)
				continue
			}
			if sub != "" && clauses == nil {
				var err error
				if clauses, err = parseTestPackage(filepath.Join(root, "storage", "storagetest"), true); err != nil {
					bad(n, "%v", err)
					continue
				}
			}
			for _, s := range strings.Split(strings.TrimPrefix(sub, "/"), "/") {
				if s != "" && !p.strings[s] && !clauses.strings[s] {
					bad(n, "%s names %s.%s%s, but no string of %s's tests (nor storagetest's) is %q", cells[0], pkg, name, sub, pkg, s)
				}
			}
		}
		if named == 0 {
			bad(n, "%s names no test (say %q and why if there is none)", cells[0], catalogueNoTest)
		}
		testsOf[attack] += named
	}
	if !found {
		return append(problems, fmt.Sprintf("SECURITY.md has no %q section", catalogueSection))
	}
	for _, a := range catalogueAttacks {
		has := false
		for cell := range rowsOf {
			if c, _, _ := strings.Cut(cell, ": "); c == a {
				has = true
			}
		}
		switch {
		case !has:
			problems = append(problems, fmt.Sprintf("the catalogue has no row for %q", a))
		case testsOf[a] == 0:
			problems = append(problems, fmt.Sprintf("no row of %q names a test", a))
		}
	}
	for _, d := range catalogueDetails {
		if rowsOf[d] == 0 {
			problems = append(problems, fmt.Sprintf("the catalogue has no row %q", d))
		}
	}
	return problems
}

// catalogueParsed caches the packages catalogueProblems has parsed, by
// directory: TestAttackCatalogueCatchesDrift checks many versions of the
// table against the same files.
var catalogueParsed = map[string]*catalogueTestPackage{}

// catalogueTestPackage is what the catalogue may name in one package: its
// test functions, and the string literals its subtests can be named by.
type catalogueTestPackage struct {
	funcs   map[string]bool
	strings map[string]bool
}

// parseTestPackage reads the test functions and string literals of dir's
// _test.go files (all its .go files with withLibrary: storagetest's
// clause names are in its library file).
func parseTestPackage(dir string, withLibrary bool) (*catalogueTestPackage, error) {
	p := &catalogueTestPackage{funcs: map[string]bool{}, strings: map[string]bool{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	for _, name := range files {
		isTest := strings.HasSuffix(name, "_test.go")
		if !isTest && !withLibrary {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %v", name, err)
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
	return p, nil
}

// TestAttackCatalogue checks SECURITY.md's "Attacks the tests try": every
// attack of issue 16 (and each part it names one by one) has a row, every
// attack names at least one test, and every test named is a function of
// the named package directory's _test.go files (parsed with go/parser), so
// that the table cannot drift from the tests.
func TestAttackCatalogue(t *testing.T) {
	md, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range catalogueProblems(string(md), ".") {
		t.Error(p)
	}
}

// TestAttackCatalogueCatchesDrift shows that TestAttackCatalogue can fail:
// SECURITY.md with a test name misspelled, a package that does not exist,
// an attack's rows removed, an attack that is not on the list, or a row
// without a test gives the problem each should.
func TestAttackCatalogueCatchesDrift(t *testing.T) {
	b, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	if p := catalogueProblems(md, "."); len(p) != 0 {
		t.Skipf("the catalogue has problems of its own (TestAttackCatalogue reports them): %d", len(p))
	}
	const name = "kdf.TestAttack16CraftedPHCRefusedBeforeWork"
	if !strings.Contains(md, "`"+name+"`") {
		t.Fatalf("the catalogue does not name %s: pick another name for this test", name)
	}
	var kept []string
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "| TOTP replay") {
			kept = append(kept, line)
		}
	}
	for what, tc := range map[string]struct{ md, want string }{
		"misspelled":         {strings.Replace(md, name, "kdf.TestAttack16CraftedPHCRefusedBeforWork", 1), "TestAttack16CraftedPHCRefusedBeforWork, which is not a test function"},
		"no such package":    {strings.Replace(md, "`"+name, "`kdff."+name[len("kdf."):], 1), "no package directory kdff"},
		"attack removed":     {strings.Join(kept, "\n"), `no row for "TOTP replay"`},
		"attack not listed":  {strings.Replace(md, "| crafted PHC strings", "| crafted PHC string", 1), `"crafted PHC string" is not one of issue 16's attacks`},
		"not a test name":    {strings.Replace(md, "`"+name+"`", "`"+name+"()`", 1), "is not package/path.TestName"},
		"no section":         {strings.Replace(md, catalogueSection, "## Attacks", 1), "no \"## Attacks the tests try\" section"},
		"unbalanced":         {strings.Replace(md, "`"+name+"`", "`"+name, 1), "unbalanced backquotes"},
		"subtest misspelled": {strings.Replace(md, "`"+name+"`", "`"+name+"/m_overr`", 1), `no string of kdf's tests (nor storagetest's) is "m_overr"`},
	} {
		problems := catalogueProblems(tc.md, ".")
		ok := false
		for _, p := range problems {
			ok = ok || strings.Contains(p, tc.want)
		}
		if !ok {
			t.Errorf("%s: no problem says %q; got %q", what, tc.want, problems)
		}
	}
}
