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
    key    BLOB    NOT NULL PRIMARY KEY CHECK (length(key) = 32),
    tat_us INTEGER NOT NULL
) STRICT;

-- The bounded removal of expired rows.
CREATE INDEX {schema}.keyhold_rate_limits_tat_us ON keyhold_rate_limits (tat_us);

-- failures counts the attempts since the last success or lock, locks the
-- locks since the state was last forgotten or reset; locked_until_ms is
-- when the current lock ends (0: there has been no lock), expires_ms when
-- the state is forgotten: a row with expires_ms <= now is absent.
CREATE TABLE {schema}.keyhold_lockouts (
    key             BLOB    NOT NULL PRIMARY KEY CHECK (length(key) = 32),
    failures        INTEGER NOT NULL CHECK (failures >= 0),
    locks           INTEGER NOT NULL CHECK (locks >= 0),
    locked_until_ms INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL
) STRICT;

-- The bounded removal of expired rows.
CREATE INDEX {schema}.keyhold_lockouts_expires_ms ON keyhold_lockouts (expires_ms);
