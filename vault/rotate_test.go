package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
)

// appRecords is an application's table of sealed records, as a
// RecordSource; failAfter makes Replace fail after that many calls, to
// interrupt a walk.
type appRecords struct {
	mu        sync.Mutex
	rows      map[string]StoredRecord
	replaced  int
	failAfter int
}

func (a *appRecords) Next(ctx context.Context, cursor string) ([]StoredRecord, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]string, 0, len(a.rows))
	for k := range a.rows {
		if k > cursor {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > 3 {
		keys = keys[:3]
	}
	var batch []StoredRecord
	for _, k := range keys {
		batch = append(batch, a.rows[k])
	}
	if len(keys) == 0 {
		return nil, cursor, nil
	}
	return batch, keys[len(keys)-1], nil
}

func (a *appRecords) Replace(ctx context.Context, r StoredRecord, resealed []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failAfter > 0 && a.replaced >= a.failAfter {
		return errors.New("injected failure")
	}
	a.replaced++
	r.Sealed = resealed
	a.rows[r.Key] = r
	return nil
}

// VLT-08: rotation makes a new version, keeps old records readable until
// the walk has re-sealed them (resumably), then destroys the old key; an
// old vault record with the old passphrase then opens no current record.
func TestRotateMasterKey(t *testing.T) {
	t.Parallel()
	v, store := newTestVault(t)
	u := mustCreate(t, v, "rita", "rita's passphrase")
	oldKeys, err := v.RegenerateRecoveryKeys(bg, u, 2)
	if err != nil {
		t.Fatal(err)
	}
	app := &appRecords{rows: map[string]StoredRecord{}}
	for i := range 10 {
		ctx := fmt.Appendf(nil, "notes/%02d/body", i)
		sealed, _ := u.Seal(fmt.Appendf(nil, "note %d", i), ctx)
		key := fmt.Sprintf("%02d", i)
		app.rows[key] = StoredRecord{Key: key, Context: ctx, Sealed: sealed}
	}
	oldRecord, _ := store.GetVault(bg, "rita")

	if _, _, err := v.RotateMasterKey(bg, "rita", []byte("wrong passphrase")); !errors.Is(err, ErrUnlockFailed) {
		t.Fatalf("rotation with a wrong passphrase: %v", err)
	}
	nu, newKeys, err := v.RotateMasterKey(bg, "rita", []byte("rita's passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if nu.KeyVersion() != 2 || !slices.Equal(nu.RetiredVersions(), []uint32{1}) || len(newKeys) != 2 {
		t.Fatalf("after rotation: version %d, retired %v, %d recovery keys", nu.KeyVersion(), nu.RetiredVersions(), len(newKeys))
	}
	for _, k := range oldKeys {
		if _, _, err := v.UnlockWithRecoveryKey(bg, "rita", k.Reveal()); !errors.Is(err, ErrUnlockFailed) {
			t.Fatalf("an old recovery key after rotation: %v", err)
		}
	}
	// Old records still open, through a fresh unlock too.
	again, err := v.Unlock(bg, "rita", []byte("rita's passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Open(app.rows["03"].Sealed, app.rows["03"].Context); err != nil {
		t.Fatalf("old record after rotation: %v", err)
	}

	// A walk interrupted after 4 replacements, then resumed from its cursor.
	app.failAfter = 4
	var last ReencryptProgress
	p, err := again.ReencryptAll(bg, app, "", func(p ReencryptProgress) { last = p })
	if err == nil || p.Resealed != 4 {
		t.Fatalf("interrupted walk: %+v, %v", p, err)
	}
	for k, r := range app.rows { // nothing lost mid-walk
		if _, err := again.Open(r.Sealed, r.Context); err != nil {
			t.Fatalf("record %s unreadable mid-walk: %v", k, err)
		}
	}
	app.failAfter = 0
	p, err = again.ReencryptAll(bg, app, last.Cursor, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = again.ReencryptAll(bg, app, "", nil); err != nil || p.Resealed != 0 || p.Seen != 10 {
		t.Fatalf("a second full walk: %+v, %v (want nothing left to reseal)", p, err)
	}
	if err := v.DestroyRetiredKeys(bg, again); err != nil {
		t.Fatal(err)
	}
	final, err := v.Unlock(bg, "rita", []byte("rita's passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if len(final.RetiredVersions()) != 0 {
		t.Fatal("retired keys survived DestroyRetiredKeys")
	}
	for k, r := range app.rows {
		pt, err := final.Open(r.Sealed, r.Context)
		if err != nil || string(pt) != "note "+fmt.Sprint(int(k[0]-'0')*10+int(k[1]-'0')) {
			t.Fatalf("record %s after rotation: %q, %v", k, pt, err)
		}
	}
	// The attacker's view: the old vault record and the old passphrase.
	stale := memstoreWith(t, "rita", oldRecord.Data)
	sv, _ := New(stale, Config{Hasher: testHasher})
	old, err := sv.Unlock(bg, "rita", []byte("rita's passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	for k, r := range app.rows {
		if _, err := old.Open(r.Sealed, r.Context); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("the old key opens current record %s: %v", k, err)
		}
	}
}
