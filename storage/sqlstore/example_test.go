package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/sqlstore"
)

// Open the embedded default: a SQLite file that only its owner can read,
// with compare-and-swap writes.
func ExampleOpenSQLite() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keyhold-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keyhold.db")

	st, err := sqlstore.OpenSQLite(ctx, path, sqlstore.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	fi, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("file mode:", fi.Mode())

	// Two writers read the absent record (expect 0) and both try to
	// create it: the first wins, the second is told it lost.
	fmt.Println("first writer:", st.PutVault(ctx, "alice", []byte("sealed vault A"), 0))
	err = st.PutVault(ctx, "alice", []byte("sealed vault B"), 0)
	fmt.Println("second writer conflicts:", errors.Is(err, storage.ErrConflict))

	// The loser reads the current version and writes on top of it.
	rec, err := st.GetVault(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second writer retries:", st.PutVault(ctx, "alice", []byte("sealed vault B"), rec.Version))
	rec, _ = st.GetVault(ctx, "alice")
	fmt.Printf("stored: version %d, %q\n", rec.Version, rec.Data)

	// A database file that others may read is refused.
	st.Close()
	os.Chmod(path, 0o644)
	_, err = sqlstore.OpenSQLite(ctx, path, sqlstore.Config{})
	fmt.Println("0644 file refused:", errors.Is(err, sqlstore.ErrInsecurePermissions))

	// Output:
	// file mode: -rw-------
	// first writer: <nil>
	// second writer conflicts: true
	// second writer retries: <nil>
	// stored: version 2, "sealed vault B"
	// 0644 file refused: true
}
