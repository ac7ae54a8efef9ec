-- 0001: one vault record per user (storage.VaultStore).
--
-- user_id is the user ID's bytes (a BLOB, so that lookups compare bytes
-- exactly, with no collation or text-encoding rules); version is the
-- compare-and-swap version (1 for the first record); data is the encoded,
-- sealed vault, opaque to the store.
CREATE TABLE {schema}.keyhold_vaults (
    user_id BLOB    NOT NULL PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 255),
    version INTEGER NOT NULL CHECK (version >= 1),
    data    BLOB    NOT NULL CHECK (length(data) <= 1048576)
) STRICT;
