-- 0006: one passkey record per user (storage.PasskeyStore), and the index
-- of its credential IDs.
--
-- keyhold_passkeys is as keyhold_vaults (user_id is the user ID's bytes,
-- version the compare-and-swap version, data the encoded record, opaque to
-- the store), with the user's WebAuthn user handle, unique: no two users'
-- records have the same. keyhold_passkey_credentials holds one row per
-- credential ID of a record, the primary key making each credential ID
-- one user's alone; a record's rows go with it (ON DELETE CASCADE where
-- the connection enforces foreign keys, as OpenSQLite's do; the Store
-- deletes them in the same transaction as well). Byte strings are BLOBs,
-- compared byte for byte, with no collation. Deleted rows are overwritten
-- on disk through the secure_delete pragma that the Store sets on its
-- connections, as a deleted vault record is.
CREATE TABLE {schema}.keyhold_passkeys (
    user_id BLOB    NOT NULL PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 255),
    handle  BLOB    NOT NULL UNIQUE CHECK (length(handle) = 64),
    version INTEGER NOT NULL CHECK (version >= 1),
    data    BLOB    NOT NULL CHECK (length(data) <= 262144)
) STRICT;

CREATE TABLE {schema}.keyhold_passkey_credentials (
    credential_id BLOB NOT NULL PRIMARY KEY CHECK (length(credential_id) BETWEEN 1 AND 1023),
    user_id       BLOB NOT NULL REFERENCES keyhold_passkeys (user_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX {schema}.keyhold_passkey_credentials_user_id ON keyhold_passkey_credentials (user_id);
