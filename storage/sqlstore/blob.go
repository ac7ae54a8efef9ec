package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/storage"
)

var _ storage.BlobStore = (*Store)(nil)

// blobQueries are the statements of BlobStore, on the table of migration
// 0008, keyhold_blobs.
type blobQueries struct {
	get, insert, update, list, deleteUser string
}

func buildBlobQueries(d Dialect, schema string) blobQueries {
	t := qualify(schema) + "keyhold_blobs"
	length := "length(data)"
	if d == PostgreSQL {
		length = "octet_length(data)"
	}
	return blobQueries{
		get:    rebind(d, "SELECT version, data FROM "+t+" WHERE user_id = ? AND name = ?"),
		insert: rebind(d, "INSERT INTO "+t+" (user_id, name, version, data) VALUES (?, ?, 1, ?) ON CONFLICT (user_id, name) DO NOTHING"),
		update: rebind(d, "UPDATE "+t+" SET version = ?, data = ? WHERE user_id = ? AND name = ? AND version = ?"),
		// name is a BLOB (SQLite) or bytea (PostgreSQL): both compare
		// and sort byte for byte, whatever the database's collation.
		list:       rebind(d, "SELECT name, version, "+length+" FROM "+t+" WHERE user_id = ? AND name > ? ORDER BY name LIMIT ?"),
		deleteUser: rebind(d, "DELETE FROM "+t+" WHERE user_id = ?"),
	}
}

// checkBlobName refuses blob names outside the bounds of package storage.
// The name is not echoed.
func checkBlobName(name string) error {
	if len(name) == 0 || len(name) > storage.MaxBlobNameLen {
		return fmt.Errorf("%w: blob name of %d bytes (want 1 to %d)", errBounds, len(name), storage.MaxBlobNameLen)
	}
	return nil
}

// GetBlob returns the user's blob of this name (a tombstone included), or
// [storage.ErrNotFound] if there is none. The blob's Data is the caller's
// own copy (empty and not nil for a tombstone).
func (s *Store) GetBlob(ctx context.Context, userID, name string) (storage.Blob, error) {
	if s == nil {
		return storage.Blob{}, errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return storage.Blob{}, err
	}
	if err := checkBlobName(name); err != nil {
		return storage.Blob{}, err
	}
	var (
		version int64
		data    []byte
	)
	err := read(func() error {
		// Scan into *[]byte copies the driver's bytes.
		return s.r.QueryRowContext(ctx, s.bq.get, []byte(userID), []byte(name)).Scan(&version, &data)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Blob{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Blob{}, fmt.Errorf("sqlstore: get blob: %w", ctxErr(ctx, err))
	}
	if version < 1 {
		return storage.Blob{}, fmt.Errorf("sqlstore: get blob: stored version %d is not positive", version)
	}
	if data == nil {
		data = []byte{}
	}
	return storage.Blob{UserID: userID, Name: name, Version: uint64(version), Data: data}, nil
}

// PutBlob stores data (empty: a tombstone) as the user's blob of this
// name with version expect+1 if the stored blob has version expect
// (expect 0: if there is none), and returns [storage.ErrConflict]
// otherwise. As PutVault, the check and the write are one statement
// (INSERT … ON CONFLICT DO NOTHING, or UPDATE … WHERE version = expect),
// so of concurrent calls with the same expect exactly one succeeds. With
// SQLite (through [OpenSQLite]), the value replaced is overwritten in the
// database file (secure_delete).
func (s *Store) PutBlob(ctx context.Context, userID, name string, data []byte, expect uint64) error {
	if s == nil {
		return errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := checkBlobName(name); err != nil {
		return err
	}
	if len(data) > storage.MaxBlobDataLen {
		return fmt.Errorf("%w: blob data of %d bytes (want at most %d)", errBounds, len(data), storage.MaxBlobDataLen)
	}
	return s.casWrite(ctx, "blob", s.bq.insert, s.bq.update, []any{[]byte(userID), []byte(name)}, data, expect)
}

// ListBlobs returns the user's blobs, tombstones included, in increasing
// byte order of their names, at most limit of them after the name after
// ("" from the first), in one query that the table's primary key serves.
// A limit below 1, or an after longer than [storage.MaxBlobNameLen]
// bytes, is refused with an error wrapping [storage.ErrInvalid].
func (s *Store) ListBlobs(ctx context.Context, userID, after string, limit int) ([]storage.BlobInfo, error) {
	if s == nil {
		return nil, errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if len(after) > storage.MaxBlobNameLen {
		return nil, fmt.Errorf("%w: list after a name of %d bytes (want at most %d)", errBounds, len(after), storage.MaxBlobNameLen)
	}
	if limit < 1 {
		return nil, fmt.Errorf("%w: list limit %d (want at least 1)", errBounds, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list blobs: %w", err)
	}
	var out []storage.BlobInfo
	err := read(func() error {
		var err error
		out, err = s.listBlobs(ctx, userID, after, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list blobs: %w", ctxErr(ctx, err))
	}
	return out, nil
}

// listBlobs is one attempt of ListBlobs.
func (s *Store) listBlobs(ctx context.Context, userID, after string, limit int) ([]storage.BlobInfo, error) {
	rows, err := s.r.QueryContext(ctx, s.bq.list, []byte(userID), []byte(after), int64(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []storage.BlobInfo{}
	for rows.Next() {
		var (
			name          []byte
			version, size int64
		)
		if err := rows.Scan(&name, &version, &size); err != nil {
			return nil, err
		}
		if version < 1 {
			return nil, fmt.Errorf("stored version %d is not positive", version)
		}
		if size < 0 || size > storage.MaxBlobDataLen {
			return nil, fmt.Errorf("stored blob of %d bytes", size)
		}
		out = append(out, storage.BlobInfo{Name: string(name), Version: uint64(version), Size: int(size)})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteBlobs removes every blob of the user, tombstones and versions
// included, in one statement; it returns nil when the user has none. With
// SQLite (through [OpenSQLite]), the deleted rows are overwritten in the
// database file (secure_delete), as a deleted vault record is.
func (s *Store) DeleteBlobs(ctx context.Context, userID string) error {
	if s == nil {
		return errNilStore
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: delete blobs: %w", err)
	}
	if err := s.exec(ctx, s.bq.deleteUser, []byte(userID)); err != nil {
		return fmt.Errorf("sqlstore: delete blobs: %w", ctxErr(ctx, err))
	}
	return nil
}
