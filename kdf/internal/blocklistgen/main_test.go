package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyhold/keyhold/internal/testenv"
)

func sampleCoffee(n int) []byte {
	var es []string
	for i := range n {
		es = append(es, fmt.Sprintf("Pw%05d", n-i))
	}
	es = append(es, "ＦＵＬＬ", "pw00001", "")
	return []byte("frequency_lists = \n  passwords: \"" + strings.Join(es, ",") + "\"\n  english_wikipedia: \"the,of\"\n")
}

func TestExtract(t *testing.T) {
	es, err := extract(sampleCoffee(minEntries))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != minEntries+1 || !slices.IsSorted(es) || es[0] != "full" || es[1] != "pw00001" {
		t.Fatalf("got %d entries starting %q", len(es), es[:2])
	}
	if _, err := extract(sampleCoffee(10)); err == nil {
		t.Fatal("short list accepted")
	}
	if _, err := extract([]byte("english_wikipedia: \"a,b\"")); err == nil {
		t.Fatal("missing list accepted")
	}
}

func TestEncodeReproducible(t *testing.T) {
	es := []string{"a", "b", "c"}
	a, err := encode(es)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := encode(es)
	if !bytes.Equal(a, b) {
		t.Fatal("output not reproducible")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Fatalf("header %+v", zr.Header)
	}
	text, _ := io.ReadAll(zr)
	if string(text) != "a\nb\nc\n" {
		t.Fatalf("text %q", text)
	}
}

// TestRegenerate checks that the committed list is what the generator
// makes from the source, when ZXCVBN_FREQUENCY_LISTS points at it.
func TestRegenerate(t *testing.T) {
	src := testenv.Env(t, "ZXCVBN_FREQUENCY_LISTS", "the path of zxcvbn 4.4.2's src/frequency_lists.coffee, from `npm pack zxcvbn@4.4.2`; .ci/run sets it")
	out := filepath.Join(t.TempDir(), "blocklist.txt.gz")
	if err := run(src, out, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want, err := os.ReadFile("../../blocklist.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("kdf/blocklist.txt.gz differs from the generator's output; run go generate")
	}
}
