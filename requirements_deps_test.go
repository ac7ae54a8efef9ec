package keyhold_test

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
)

// cryptoModules are the modules whose code the library may run besides
// the standard library and keyhold itself (VLT-18): x/crypto's primitives
// (Argon2id, HKDF, PBKDF2, bcrypt, scrypt), x/sys (x/crypto's CPU
// detection) and x/text (NFKC), and fernet-go, read and written only for
// the legacy Fernet format (SES-22) in vault/fernet*.go.
var cryptoModules = []string{"golang.org/x/crypto", "golang.org/x/sys", "golang.org/x/text", "github.com/fernet/fernet-go"}

// adapterModules are the database clients the storage adapters add, each
// allowed in its adapter only: they move bytes keyhold already sealed or
// hashed and provide no primitive keyhold uses.
var adapterModules = map[string][]string{
	"./storage/sqlstore": {
		"github.com/jackc/pgx/v5", "github.com/jackc/pgpassfile", "github.com/jackc/pgservicefile", "github.com/jackc/puddle/v2",
		"golang.org/x/sync", "modernc.org/sqlite", "modernc.org/libc", "modernc.org/mathutil", "modernc.org/memory",
		"github.com/dustin/go-humanize", "github.com/google/uuid", "github.com/mattn/go-isatty", "github.com/ncruces/go-strftime",
		"github.com/remyoudompheng/bigfft",
	},
	"./storage/redisstore": {"github.com/redis/go-redis/v9", "github.com/cespare/xxhash/v2", "go.uber.org/atomic"},
}

// VLT-18: the library's packages depend only on the standard library,
// keyhold and an allowlist of modules (go list -deps), and the one
// outside implementation of a cryptographic format, fernet-go, is imported
// only by vault's Fernet files.
func TestRequirementCryptoDependencies(t *testing.T) {
	goTool := testenv.LookPath(t, "go", "install Go")
	pkgs := []string{".", "./kdf", "./vault", "./session", "./ratelimit", "./storage", "./storage/memstore", "./storage/sqlstore", "./storage/redisstore", "./internal/clientip"}
	for _, pkg := range pkgs {
		out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}{{end}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		allowed := append(slices.Clone(cryptoModules), adapterModules[pkg]...)
		for line := range strings.Lines(string(out)) {
			importPath, module, _ := strings.Cut(strings.TrimSpace(line), " ")
			if module == "github.com/keyhold/keyhold" {
				if strings.Contains(importPath, "/internal/test") || strings.HasSuffix(importPath, "/storagetest") {
					t.Errorf("%s depends on the test helper %s", pkg, importPath)
				}
				continue
			}
			if !slices.Contains(allowed, module) {
				t.Errorf("%s depends on %s (module %q), which is not on the allowlist", pkg, importPath, module)
			}
		}
	}

	files, err := filepath.Glob("*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("*/*/*.go")
	files = append(files, more...)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/fernet/") && !strings.HasPrefix(name, filepath.Join("vault", "fernet")) && !strings.Contains(name, "vectorgen") {
				t.Errorf("%s imports %s: only vault's Fernet files may", name, p)
			}
		}
	}
}
