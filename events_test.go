package keyhold_test

import (
	"go/ast"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// auditEvent is one row of SECURITY.md's "Audit events" table, or one
// place in the code that emits an event.
type auditEvent struct {
	name, pkg string
	levels    []string // "Debug", "Info", "Warn", "Error"
}

// auditTable parses the table of SECURITY.md's "Audit events" section:
// rows of | `event` | package | Level[, Level] | when | fields |.
func auditTable(t *testing.T) map[[2]string][]string {
	t.Helper()
	b, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Audit events\n")
	if !ok {
		t.Fatal(`SECURITY.md has no "## Audit events" section`)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	row := regexp.MustCompile("^\\| `([a-z][a-z0-9_]*)` \\| ([a-z/]+) \\| ([A-Za-z, ]+) \\|")
	rows := map[[2]string][]string{}
	for line := range strings.Lines(sec) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		m := row.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("SECURITY.md, Audit events: a row that does not parse: %s", line)
			continue
		}
		key := [2]string{m[1], m[2]}
		if _, dup := rows[key]; dup {
			t.Errorf("SECURITY.md, Audit events: %s (%s) listed twice", m[1], m[2])
		}
		var levels []string
		for l := range strings.SplitSeq(m[3], ",") {
			levels = append(levels, strings.TrimSpace(l))
		}
		slices.Sort(levels)
		rows[key] = levels
	}
	if len(rows) < 10 {
		t.Fatalf("SECURITY.md, Audit events: only %d rows parsed", len(rows))
	}
	return rows
}

// slogMessageArg is the index of the message among the arguments of each
// slog.Logger method (and slog package function) that logs.
var slogMessageArg = map[string]int{
	"Debug": 0, "Info": 0, "Warn": 0, "Error": 0,
	"DebugContext": 1, "InfoContext": 1, "WarnContext": 1, "ErrorContext": 1,
	"Log": 2, "LogAttrs": 2,
}

// isLogger reports whether x, the receiver of a call, is a slog logger:
// the slog package, or a value or field whose name says log (m.log,
// l.log, logger, slog.Default()). Other receivers of methods named Error
// (http, an error value) are not loggers.
func isLogger(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.Ident:
		return strings.Contains(strings.ToLower(x.Name), "log")
	case *ast.SelectorExpr:
		return strings.Contains(strings.ToLower(x.Sel.Name), "log")
	case *ast.CallExpr:
		if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "slog" {
				return true
			}
			return isLogger(sel.X)
		}
	}
	return false
}

// forwarder is a function of the library that passes its parameter at
// msg on as the message of a slog call (and its parameter at level, if
// level >= 0, as the level): an event helper such as session's audit.
type forwarder struct {
	msg, level int
	fixed      string // the level, when the helper fixes it
}

// emittedEvents walks the library's non-test code (not the examples' nor
// the benchmarks') for every slog call and every call of a helper that
// forwards its argument to one, and returns the event names passed as
// string literals, with their package and level. A message that is
// neither a literal nor a parameter forwarded from a caller is an error:
// every event name must be visible in the code.
func emittedEvents(t *testing.T) []auditEvent {
	t.Helper()
	type fileInfo struct {
		path, pkg string
		f         *ast.File
	}
	var files []fileInfo
	for path, f := range libraryFiles(t) {
		top := strings.Split(filepath.ToSlash(path), "/")[0]
		if top == "examples" || top == "bench" {
			continue
		}
		files = append(files, fileInfo{path, filepath.ToSlash(filepath.Dir(path)), f})
	}
	forwarders := map[[2]string]forwarder{} // package, function name
	var events []auditEvent
	var problems []string
	// levelOf returns the level an argument names: "Info" for
	// slog.LevelInfo, or "param:N" for the function's parameter N.
	levelOf := func(e ast.Expr, params map[string]int) string {
		if sel, ok := e.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "slog" && strings.HasPrefix(sel.Sel.Name, "Level") {
				return strings.TrimPrefix(sel.Sel.Name, "Level")
			}
		}
		if id, ok := e.(*ast.Ident); ok {
			if i, ok := params[id.Name]; ok {
				return "param:" + strconv.Itoa(i)
			}
		}
		return ""
	}
	// Each pass finds the calls of slog and of the forwarders known so
	// far; a pass that finds a new forwarder asks for another.
	for pass := 0; ; pass++ {
		if pass > 5 {
			t.Fatal("event helpers forward to each other more than 5 deep")
		}
		events, problems = nil, nil
		grew := false
		for _, fi := range files {
			for _, decl := range fi.f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				params := map[string]int{}
				i := 0
				for _, field := range fn.Type.Params.List {
					for _, name := range field.Names {
						params[name.Name] = i
						i++
					}
					if len(field.Names) == 0 {
						i++
					}
				}
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					var name string
					switch f := call.Fun.(type) {
					case *ast.SelectorExpr:
						name = f.Sel.Name
					case *ast.Ident:
						name = f.Name
					default:
						return true
					}
					var fw forwarder
					if idx, ok := slogMessageArg[name]; ok && isSelectorOnLogger(call.Fun) {
						fw = forwarder{msg: idx, level: -1}
						if idx == 2 {
							fw.level = 1
						} else {
							fw.fixed = strings.TrimSuffix(name, "Context")
						}
					} else if f, ok := forwarders[[2]string{fi.pkg, name}]; ok {
						fw = f
					} else {
						return true
					}
					if fw.msg >= len(call.Args) {
						return true
					}
					level := fw.fixed
					if fw.level >= 0 && fw.level < len(call.Args) {
						level = levelOf(call.Args[fw.level], params)
					}
					pos := position(t, fi.path, fi.f, call.Pos())
					switch m := call.Args[fw.msg].(type) {
					case *ast.BasicLit:
						s, err := strconv.Unquote(m.Value)
						if m.Kind != token.STRING || err != nil {
							problems = append(problems, pos+": a message that is not a string")
							return true
						}
						if level == "" || strings.HasPrefix(level, "param:") {
							problems = append(problems, pos+": "+s+" at a level the test cannot read")
							return true
						}
						events = append(events, auditEvent{name: s, pkg: fi.pkg, levels: []string{level}})
					case *ast.Ident:
						pi, ok := params[m.Name]
						if !ok {
							problems = append(problems, pos+": the event name is a variable, not a literal or a parameter")
							return true
						}
						nf := forwarder{msg: pi, level: -1, fixed: level}
						if l, ok := strings.CutPrefix(level, "param:"); ok {
							nf.level, _ = strconv.Atoi(l)
							nf.fixed = ""
						}
						key := [2]string{fi.pkg, fn.Name.Name}
						if old, ok := forwarders[key]; !ok || old != nf {
							forwarders[key] = nf
							grew = true
						}
					default:
						problems = append(problems, pos+": the event name is an expression, not a literal")
					}
					return true
				})
			}
		}
		if !grew {
			break
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(forwarders) == 0 || len(events) < 10 {
		t.Fatalf("found %d events and %d helpers: the walk is broken", len(events), len(forwarders))
	}
	return events
}

// isSelectorOnLogger reports whether fun is a method called on a slog
// logger (or a function of package slog).
func isSelectorOnLogger(fun ast.Expr) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	return ok && isLogger(sel.X)
}

// position returns "path:line" of p in f, parsed from path.
func position(t *testing.T, path string, f *ast.File, p token.Pos) string {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := min(int(p-f.FileStart), len(src))
	return path + ":" + strconv.Itoa(1+strings.Count(string(src[:off]), "\n"))
}

// X-02, RL-11, SES-23: the library logs one vocabulary, and SECURITY.md's
// "Audit events" table lists every event it emits, at the levels it
// emits them, and no event it does not.
func TestAuditEventsDocumented(t *testing.T) {
	table := auditTable(t)
	emitted := map[[2]string][]string{}
	for _, e := range emittedEvents(t) {
		key := [2]string{e.name, e.pkg}
		if !slices.Contains(emitted[key], e.levels[0]) {
			emitted[key] = append(emitted[key], e.levels[0])
			slices.Sort(emitted[key])
		}
	}
	name := regexp.MustCompile(`^(authn|authz|session|crypt|excess|input|sys)_[a-z0-9_]+$`)
	for key, levels := range emitted {
		if !name.MatchString(key[0]) {
			t.Errorf("%s logs %q, outside the vocabulary (category_subject_outcome)", key[1], key[0])
		}
		want, ok := table[key]
		if !ok {
			t.Errorf("%s logs %s, which SECURITY.md's Audit events table does not list for it", key[1], key[0])
			continue
		}
		if !slices.Equal(levels, want) {
			t.Errorf("%s logs %s at %v; the table says %v", key[1], key[0], levels, want)
		}
	}
	for key := range table {
		if _, ok := emitted[key]; !ok {
			t.Errorf("SECURITY.md's Audit events table lists %s for %s, which never logs it", key[0], key[1])
		}
	}
	for _, want := range []string{"authn_login_fail_max", "authn_login_lock", "excess_rate_limit_exceeded"} {
		if _, ok := emitted[[2]string{want, "ratelimit"}]; !ok {
			t.Errorf("ratelimit does not log %s (RL-11)", want)
		}
	}
	if _, ok := emitted[[2]string{"authn_token_reuse", "session"}]; !ok {
		t.Error("session does not log authn_token_reuse (SES-23)")
	}
}
