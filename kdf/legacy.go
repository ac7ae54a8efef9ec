package kdf

// parseLegacy parses the verify-only formats (bcrypt, scrypt, passlib,
// Django, Werkzeug). ok is false when encoded is none of them.
func parseLegacy(encoded string, lim Limits) (h storedHash, ok bool, err error) {
	return nil, false, nil
}
