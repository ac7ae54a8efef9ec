package keyhold_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// libraryFiles returns the non-test Go files of the module, except those of
// runnable examples and benchmark programs, parsed.
func libraryFiles(t *testing.T) map[string]*ast.File {
	t.Helper()
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution|parser.ParseComments)
		if err != nil {
			return err
		}
		files[path] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d Go files: the walk is broken", len(files))
	}
	return files
}

// security randomness comes only from crypto/rand; math/rand is not
// imported by any non-test file.
func TestNoMathRand(t *testing.T) {
	for path, f := range libraryFiles(t) {
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "math/rand" || p == "math/rand/v2" {
				t.Errorf("%s imports %s", path, p)
			}
		}
	}
}

// KDF-10 (and its like in every package): secrets are compared in constant
// time, so no library file compares bytes with bytes.Equal or
// bytes.Compare; crypto/subtle is the tool.
func TestNoVariableTimeByteComparison(t *testing.T) {
	for path, f := range libraryFiles(t) {
		if strings.HasPrefix(path, "examples"+string(filepath.Separator)) || strings.HasPrefix(path, "bench"+string(filepath.Separator)) {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "bytes" && (sel.Sel.Name == "Equal" || sel.Sel.Name == "Compare") {
				t.Errorf("%s uses bytes.%s: compare secrets with crypto/subtle", path, sel.Sel.Name)
			}
			return true
		})
	}
}

// Every exported identifier of a library package has a doc comment.
func TestExportedIdentifiersDocumented(t *testing.T) {
	for path, f := range libraryFiles(t) {
		if f.Name.Name == "main" {
			continue
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() || d.Doc != nil {
					continue
				}
				if d.Recv != nil && !exportedReceiver(d.Recv) {
					continue
				}
				t.Errorf("%s: %s has no doc comment", path, d.Name.Name)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() && s.Doc == nil && d.Doc == nil {
							t.Errorf("%s: type %s has no doc comment", path, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() && s.Doc == nil && d.Doc == nil && s.Comment == nil {
								t.Errorf("%s: %s has no doc comment", path, n.Name)
							}
						}
					}
				}
			}
		}
	}
}

func exportedReceiver(recv *ast.FieldList) bool {
	if len(recv.List) == 0 {
		return false
	}
	typ := recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if idx, ok := typ.(*ast.IndexExpr); ok {
		typ = idx.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}
