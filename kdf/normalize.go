package kdf

import (
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalize returns the NFKC form of password, the one form in which this
// package hashes, derives keys from and measures passwords, so that the
// same passphrase typed on two keyboards (precomposed or decomposed
// accents, full-width digits) verifies alike. Nothing is trimmed or folded:
// case and spaces stay significant.
//
// The returned slice is password itself when it was already in NFKC form,
// and a new allocation otherwise; changed tells which.
func normalize(password []byte) ([]byte, error) {
	n, _, err := normalizeChanged(password)
	return n, err
}

// normalizeChanged is normalize that also reports whether the NFKC form
// differs from the input.
func normalizeChanged(password []byte) (normal []byte, changed bool, err error) {
	if !utf8.Valid(password) {
		return nil, false, ErrInvalidUTF8
	}
	if norm.NFKC.IsNormal(password) {
		return password, false, nil
	}
	return norm.NFKC.Bytes(password), true, nil
}
