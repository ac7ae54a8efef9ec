-- 0003: rate-limiter state (storage.RateStore) and lockout state
-- (storage.LockoutStore).
--
-- key is the state's key: a hash of the limiter's name and of the client
-- or account it limits, exactly 32 bytes, so that no IP address or user
-- name is stored. The times are those of the callers' requests (never the
-- database's clock), in Unix microseconds (_us) or milliseconds (_ms).
--
-- tat_us is a rate limiter's theoretical arrival time: its bucket is full
-- again at tat_us, so a row with tat_us <= now is absent.
CREATE TABLE {schema}.keyhold_rate_limits (
    key    bytea  NOT NULL PRIMARY KEY CHECK (octet_length(key) = 32),
    tat_us bigint NOT NULL
);

-- The bounded removal of expired rows.
CREATE INDEX keyhold_rate_limits_tat_us ON {schema}.keyhold_rate_limits (tat_us);

-- failures counts the attempts since the last success or lock, locks the
-- locks since the state was last forgotten or reset; locked_until_ms is
-- when the current lock ends (0: there has been no lock), expires_ms when
-- the state is forgotten: a row with expires_ms <= now is absent.
CREATE TABLE {schema}.keyhold_lockouts (
    key             bytea   NOT NULL PRIMARY KEY CHECK (octet_length(key) = 32),
    failures        integer NOT NULL CHECK (failures >= 0),
    locks           bigint  NOT NULL CHECK (locks >= 0),
    locked_until_ms bigint  NOT NULL,
    expires_ms      bigint  NOT NULL
);

-- The bounded removal of expired rows.
CREATE INDEX keyhold_lockouts_expires_ms ON {schema}.keyhold_lockouts (expires_ms);
