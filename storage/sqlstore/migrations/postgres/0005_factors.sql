-- 0005: one factor record per user (storage.FactorStore): package totp's
-- TOTP credentials, sealed, and recovery-code hashes.
--
-- As keyhold_vaults: user_id is the user ID's bytes (bytea, so that
-- lookups compare bytes exactly, with no collation or text-encoding
-- rules); version is the compare-and-swap version (1 for the first
-- record); data is the encoded record, opaque to the store.
CREATE TABLE {schema}.keyhold_factors (
    user_id bytea  NOT NULL PRIMARY KEY CHECK (octet_length(user_id) BETWEEN 1 AND 255),
    version bigint NOT NULL CHECK (version >= 1),
    data    bytea  NOT NULL CHECK (octet_length(data) <= 65536)
);
