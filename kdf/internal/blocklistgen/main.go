// Command blocklistgen produces kdf/blocklist.txt.gz, the common-password
// list embedded in package kdf, from the zxcvbn npm package.
//
// Usage (from the kdf directory, normally through go generate):
//
//	npm pack zxcvbn@4.4.2 && tar -xzf zxcvbn-4.4.2.tgz
//	ZXCVBN_FREQUENCY_LISTS=$PWD/package/src/frequency_lists.coffee go generate -run blocklistgen .
//
// It reads the `passwords: "…"` entry of src/frequency_lists.coffee (a
// comma-separated list ordered by frequency), maps every entry to its
// Unicode NFKC form and then its case fold (the form package kdf compares
// in), drops empty entries and duplicates, sorts the result by byte order
// and writes it one entry per line, gzip-compressed without a file name or
// modification time so that the output is reproducible. See
// kdf/BLOCKLIST-SOURCE.md for the source, version and licence.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// minEntries guards against a source file whose format changed: the list
// in zxcvbn 4.4.2 has 30,000 entries and kdf promises at least 10,000.
const minEntries = 10000

var passwordsRE = regexp.MustCompile(`(?m)^\s*passwords:\s*"([^"]*)"`)

func main() {
	src := flag.String("src", "", "path to zxcvbn's src/frequency_lists.coffee")
	out := flag.String("out", "blocklist.txt.gz", "output file")
	flag.Parse()
	if err := run(*src, *out, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "blocklistgen:", err)
		os.Exit(1)
	}
}

func run(src, out string, log io.Writer) error {
	if src == "" {
		return errors.New("-src is required (set ZXCVBN_FREQUENCY_LISTS for go generate)")
	}
	in, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	entries, err := extract(in)
	if err != nil {
		return err
	}
	gz, err := encode(entries)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, gz, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "source sha256 %x\n%d entries\noutput sha256 %x (%d bytes)\n",
		sha256.Sum256(in), len(entries), sha256.Sum256(gz), len(gz))
	return nil
}

// extract returns the normalised, folded, sorted and deduplicated entries
// of the passwords list in a frequency_lists.coffee file.
func extract(coffee []byte) ([]string, error) {
	m := passwordsRE.FindSubmatch(coffee)
	if m == nil {
		return nil, errors.New(`no passwords: "…" entry found`)
	}
	if !utf8.Valid(m[1]) {
		return nil, errors.New("passwords list is not valid UTF-8")
	}
	fold := cases.Fold()
	var entries []string
	for _, e := range strings.Split(string(m[1]), ",") {
		e = fold.String(norm.NFKC.String(e))
		if e == "" {
			continue
		}
		if strings.ContainsAny(e, "\n\r") {
			return nil, fmt.Errorf("entry %q contains a line break", e)
		}
		entries = append(entries, e)
	}
	slices.Sort(entries)
	entries = slices.Compact(entries)
	if len(entries) < minEntries {
		return nil, fmt.Errorf("only %d entries, want at least %d", len(entries), minEntries)
	}
	return entries, nil
}

// encode writes entries one per line and gzips them reproducibly.
func encode(entries []string) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	// The zero Header (no name, zero ModTime) keeps the output reproducible.
	for _, e := range entries {
		if _, err := io.WriteString(zw, e+"\n"); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
