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
// The returned slice is a new allocation when the input was not already in
// NFKC form; otherwise it is password itself.
func normalize(password []byte) ([]byte, error) {
	if !utf8.Valid(password) {
		return nil, ErrInvalidUTF8
	}
	if norm.NFKC.IsNormal(password) {
		return password, nil
	}
	return norm.NFKC.Bytes(password), nil
}
