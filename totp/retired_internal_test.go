package totp

import "testing"

// used: a setup token dies with its authenticator, survives the removal of
// others, and is refused when the record no longer lists every removal
// since its Begin.
func TestSetupTokenUsedAfterRemovals(t *testing.T) {
	id := func(b byte) (out [credIDLen]byte) { out[0] = b; return out }
	now := int64(1_800_000_000_000)
	token := &setup{id: id(1), removals: 3}
	rec := &factorRecord{removals: 3}
	if rec.used(token) {
		t.Fatal("a fresh token is used")
	}
	rec.retire(id(2), now)
	if rec.used(token) {
		t.Error("removing another authenticator killed the token")
	}
	rec.creds = append(rec.creds, cred{id: id(1)})
	if !rec.used(token) {
		t.Error("the token of an enrolled authenticator is not used")
	}
	rec.creds = nil
	rec.retire(id(1), now)
	if !rec.used(token) {
		t.Error("the token of a removed authenticator works again")
	}
	// Over maxRetired removals since Begin: the token's own removal may
	// have been dropped from the list, so it is refused.
	other := &setup{id: id(3), removals: rec.removals}
	for i := range maxRetired {
		rec.retire(id(byte(10+i)), now)
	}
	if rec.used(other) {
		t.Errorf("%d removals since Begin, all listed: the token was refused", maxRetired)
	}
	rec.retire(id(99), now)
	if len(rec.retired) != maxRetired || !rec.used(other) {
		t.Errorf("%d removals since Begin, %d listed: the token was accepted", maxRetired+1, len(rec.retired))
	}
	// Removals older than the longest setup lifetime are forgotten.
	rec.retire(id(100), now+MaxSetupLifetime.Milliseconds()+1)
	if len(rec.retired) != 1 {
		t.Errorf("%d retired IDs kept after an hour, want 1", len(rec.retired))
	}
	// A token from before the record (deleted and made again) is refused.
	if !(&factorRecord{}).used(&setup{id: id(4), removals: 1}) {
		t.Error("a token with more removals than the record was accepted")
	}
}
