package keyhold_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var vectorsMarker = regexp.MustCompile("(?m)^<!-- vectors: (\\S+) -->\\n```\\n((?s:.*?))```")

// Issue 11: FORMAT.md prints its vectors' values, so that it alone can be
// checked; each printed "path = value" line must equal the vector file it
// names (a string as is or quoted, a number as written), so the two cannot
// drift apart.
func TestFormatVectors(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := vectorsMarker.FindAllSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("FORMAT.md has %d vector blocks, want at least 2 (§2 and §3.4)", len(blocks))
	}
	for _, b := range blocks {
		file := string(b[1])
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var root any
		if err := dec.Decode(&root); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		lines := strings.Split(strings.TrimSpace(string(b[2])), "\n")
		hexes := 0
		for _, line := range lines {
			path, printed, ok := strings.Cut(line, " = ")
			if !ok {
				t.Errorf("%s block: line %q is not path = value", file, line)
				continue
			}
			got, err := lookup(root, path)
			if err != nil {
				t.Errorf("%s: %s: %v", file, path, err)
				continue
			}
			switch v := got.(type) {
			case string:
				if printed != v && printed != strconv.Quote(v) {
					t.Errorf("FORMAT.md prints %s = %s; %s has %q", path, printed, file, v)
				}
				if strings.HasSuffix(path, "_hex") {
					hexes++
				}
			case json.Number:
				if printed != v.String() {
					t.Errorf("FORMAT.md prints %s = %s; %s has %s", path, printed, file, v)
				}
			default:
				t.Errorf("%s: %s is not a string or number", file, path)
			}
		}
		if hexes < 2 {
			t.Errorf("%s block prints %d hex values, want the vectors' keys or records", file, hexes)
		}
	}
}

// lookup follows a path such as "vectors[2].key_hex" or "versioned.context".
func lookup(v any, path string) (any, error) {
	for part := range strings.SplitSeq(path, ".") {
		name, index, hasIndex := strings.Cut(part, "[")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, os.ErrNotExist
		}
		if v, ok = m[name]; !ok {
			return nil, os.ErrNotExist
		}
		if hasIndex {
			i, err := strconv.Atoi(strings.TrimSuffix(index, "]"))
			a, ok := v.([]any)
			if err != nil || !ok || i < 0 || i >= len(a) {
				return nil, os.ErrNotExist
			}
			v = a[i]
		}
	}
	return v, nil
}
