package kdf

import (
	"bytes"
	"compress/gzip"
	"slices"
	"strings"
	"testing"
)

// KDF-14 (a): the embedded list has at least 10,000 entries (KDF-14 asks
// for the top 3000), sorted and unique, in folded NFKC form.
func TestBlocklistSize(t *testing.T) {
	b, err := loadBlocklist()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.entries); n < 10000 {
		t.Fatalf("%d entries, want >= 10000", n)
	} else {
		t.Logf("%d entries from %d compressed bytes", n, len(blocklistGz))
	}
	if !slices.IsSorted(b.entries) || len(slices.Compact(slices.Clone(b.entries))) != len(b.entries) {
		t.Fatal("list not sorted and unique")
	}
	for _, e := range b.entries {
		if f, ok := foldWord(e); !ok || f != e {
			t.Fatalf("entry %q is not in folded NFKC form", e)
		}
	}
	for _, w := range []string{"123456", "password", "qwerty", "iloveyou", "trustno1"} {
		if !b.contains(w) {
			t.Errorf("%q missing", w)
		}
	}
	if b.contains("correct horse battery staple") {
		t.Error("unexpected entry")
	}
	// Loading is done once.
	b2, _ := loadBlocklist()
	if b2 != b {
		t.Error("list decoded twice")
	}
}

func blocklistGzip(t *testing.T, text string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBlocklistDecodeRejectsCorrupt(t *testing.T) {
	many := func(mut func([]string) []string) string {
		var es []string
		for i := range 10000 {
			es = append(es, "w"+strings.Repeat("a", i/1000)+string(rune('a'+i%1000/100))+string(rune('a'+i%100/10))+string(rune('a'+i%10)))
		}
		slices.Sort(es)
		return strings.Join(mut(es), "\n") + "\n"
	}
	if _, err := decodeBlocklist(blocklistGzip(t, many(func(s []string) []string { return s }))); err != nil {
		t.Fatalf("valid list rejected: %v", err)
	}
	for name, gz := range map[string][]byte{
		"not gzip":      []byte("password\n"),
		"too few":       blocklistGzip(t, "a\nb\n"),
		"unsorted":      blocklistGzip(t, many(func(s []string) []string { s[0], s[1] = s[1], s[0]; return s })),
		"duplicate":     blocklistGzip(t, many(func(s []string) []string { s[1] = s[0]; return s })),
		"empty entry":   blocklistGzip(t, many(func(s []string) []string { return append([]string{""}, s...) })),
		"no newline":    blocklistGzip(t, strings.TrimSuffix(many(func(s []string) []string { return s }), "\n")),
		"invalid utf-8": blocklistGzip(t, many(func(s []string) []string { return append(s, "\xff") })),
	} {
		if _, err := decodeBlocklist(gz); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBlocklistPaddingCores(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"password", nil},
		{"password1234567", []string{"password"}},
		{"!!pass word 12!!", []string{"pass word", "pass word 12"}},
		{"123456!!!!!!!!!", []string{"123456", "!!!!!!!!!"}},
		{"!!!!1234567890!!", []string{"1234567890"}},
		{"12ab34", []string{"ab"}},
		{"1234567", nil},
		{"", nil},
	} {
		if got := paddingCores(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("paddingCores(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBlocklistRepetition(t *testing.T) {
	p := policyMust(t, PolicyConfig{Blocklist: []string{"ab", "wxyzwxyz"}})
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"passwordpassword", true},
		{"passwordpasswordpassword", true},
		{"ababab", true},
		{"abababab", true},
		{"wxyzwxyzwxyzwxyz", true}, // root "wxyz" not listed, "wxyzwxyz" is
		{"wxyzwxyzwxyz", false},    // 3 × "wxyz": "wxyzwxyz" does not divide it
		{"password", false},        // not a repetition
		{"passwordpasswor", false},
		{"ééé", false},
	} {
		if got := p.repeatsEntry(tc.in); got != tc.want {
			t.Errorf("repeatsEntry(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"aa", true}, {"ééé", true}, {"😀😀", true}, {"a", false}, {"", false}, {"aab", false}, {"é\u00e8", false},
	} {
		if got := repeatsOneRune(tc.in); got != tc.want {
			t.Errorf("repeatsOneRune(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
