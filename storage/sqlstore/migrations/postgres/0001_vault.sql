-- 0001: one vault record per user (storage.VaultStore).
--
-- user_id is the user ID's bytes (bytea, so that lookups compare bytes
-- exactly, with no collation or text-encoding rules); version is the
-- compare-and-swap version (1 for the first record); data is the encoded,
-- sealed vault, opaque to the store.
CREATE TABLE {schema}.keyhold_vaults (
    user_id bytea  NOT NULL PRIMARY KEY CHECK (octet_length(user_id) BETWEEN 1 AND 255),
    version bigint NOT NULL CHECK (version >= 1),
    data    bytea  NOT NULL CHECK (octet_length(data) <= 1048576)
);
