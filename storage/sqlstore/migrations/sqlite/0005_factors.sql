-- 0005: one factor record per user (storage.FactorStore): package totp's
-- TOTP credentials, sealed, and recovery-code hashes.
--
-- As keyhold_vaults: user_id is the user ID's bytes (a BLOB, so that
-- lookups compare bytes exactly, with no collation or text-encoding
-- rules); version is the compare-and-swap version (1 for the first
-- record); data is the encoded record, opaque to the store. A deleted row
-- is overwritten on disk through the secure_delete pragma that the Store
-- sets on its connections, as a deleted vault record is.
CREATE TABLE {schema}.keyhold_factors (
    user_id BLOB    NOT NULL PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 255),
    version INTEGER NOT NULL CHECK (version >= 1),
    data    BLOB    NOT NULL CHECK (length(data) <= 65536)
) STRICT;
