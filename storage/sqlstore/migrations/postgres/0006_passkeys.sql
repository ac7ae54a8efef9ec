-- 0006: one passkey record per user (storage.PasskeyStore), and the index
-- of its credential IDs.
--
-- keyhold_passkeys is as keyhold_vaults (user_id is the user ID's bytes,
-- version the compare-and-swap version, data the encoded record, opaque to
-- the store), with the user's WebAuthn user handle, unique: no two users'
-- records have the same. keyhold_passkey_credentials holds one row per
-- credential ID of a record, the primary key making each credential ID
-- one user's alone; a record's rows go with it (ON DELETE CASCADE, and the
-- Store deletes them in the same transaction as well). Byte strings are
-- bytea, compared byte for byte, with no collation.
CREATE TABLE {schema}.keyhold_passkeys (
    user_id bytea  NOT NULL PRIMARY KEY CHECK (octet_length(user_id) BETWEEN 1 AND 255),
    handle  bytea  NOT NULL UNIQUE CHECK (octet_length(handle) = 64),
    version bigint NOT NULL CHECK (version >= 1),
    data    bytea  NOT NULL CHECK (octet_length(data) <= 262144)
);

CREATE TABLE {schema}.keyhold_passkey_credentials (
    credential_id bytea NOT NULL PRIMARY KEY CHECK (octet_length(credential_id) BETWEEN 1 AND 1023),
    user_id       bytea NOT NULL REFERENCES {schema}.keyhold_passkeys (user_id) ON DELETE CASCADE
);

CREATE INDEX keyhold_passkey_credentials_user_id ON {schema}.keyhold_passkey_credentials (user_id);
