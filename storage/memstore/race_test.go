//go:build race

package memstore

func init() {
	// Under the race detector a decision takes some ten times as long:
	// TestAMillionKeysStayUnderTheBound makes do with a tenth of the keys,
	// still three times the bound.
	millionKeys = 100_000
}
