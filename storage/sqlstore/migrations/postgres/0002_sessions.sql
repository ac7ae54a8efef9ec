-- 0002: sessions (storage.SessionStore) and refresh-token families
-- (storage.RefreshStore).
--
-- id is the record's ID: a SHA-256 output, exactly 32 bytes. user_id is
-- the user ID's bytes (bytea, as in 0001, so that lookups compare bytes
-- exactly, with no collation or text-encoding rules). expires is the
-- expiry in Unix milliseconds: a row with expires <= now is absent, and
-- the store compares it with the clock of the process that queries (never
-- the database's). version is the refresh family's compare-and-swap
-- version (1 for the first record). data is the encoded record, opaque to
-- the store.
CREATE TABLE {schema}.keyhold_sessions (
    id      bytea  NOT NULL PRIMARY KEY CHECK (octet_length(id) = 32),
    user_id bytea  NOT NULL CHECK (octet_length(user_id) BETWEEN 1 AND 255),
    expires bigint NOT NULL,
    data    bytea  NOT NULL CHECK (octet_length(data) <= 16384)
);

-- ListUserSessions and DeleteUserSessions.
CREATE INDEX keyhold_sessions_user_id ON {schema}.keyhold_sessions (user_id);
-- The bounded removal of expired sessions.
CREATE INDEX keyhold_sessions_expires ON {schema}.keyhold_sessions (expires);

CREATE TABLE {schema}.keyhold_refresh_families (
    id      bytea  NOT NULL PRIMARY KEY CHECK (octet_length(id) = 32),
    user_id bytea  NOT NULL CHECK (octet_length(user_id) BETWEEN 1 AND 255),
    version bigint NOT NULL CHECK (version >= 1),
    expires bigint NOT NULL,
    data    bytea  NOT NULL CHECK (octet_length(data) <= 16384)
);

-- DeleteUserRefreshFamilies.
CREATE INDEX keyhold_refresh_families_user_id ON {schema}.keyhold_refresh_families (user_id);
-- The bounded removal of expired families.
CREATE INDEX keyhold_refresh_families_expires ON {schema}.keyhold_refresh_families (expires);
