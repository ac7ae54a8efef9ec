package vault

// RecordKeyVersion checks that data is a well-formed vault record, by the
// rules the decoder applies before any unlock, and returns the record's
// key version. It checks structure only: it opens nothing and cannot
// tell a genuine record from a forged one. A server that stores the vault
// records of zero-knowledge clients (package zk) uses it to refuse
// garbage; ErrInvalidRecord otherwise.
func RecordKeyVersion(data []byte) (uint32, error) {
	r, err := decodeRecord(data)
	if err != nil {
		return 0, ErrInvalidRecord
	}
	return r.keyVersion, nil
}
