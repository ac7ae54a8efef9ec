-- 0007: pending WebAuthn challenges (storage.ChallengeStore), each taken
-- once.
--
-- id is the challenge ID's 32 bytes (a hash of what the challenge is
-- bound to), expires_ms its expiry in Unix milliseconds (a row with
-- expires_ms <= now, by the process clock, is absent), data the encoded
-- challenge, opaque to the store. A take deletes the row and returns it
-- in one statement (DELETE … RETURNING). Expired rows that nobody takes
-- are removed by later puts, a bounded batch at a time, through the index
-- on expires_ms. Deleted rows are overwritten on disk through the
-- secure_delete pragma that the Store sets on its connections.
CREATE TABLE {schema}.keyhold_challenges (
    id         BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    expires_ms INTEGER NOT NULL,
    data       BLOB    NOT NULL CHECK (length(data) BETWEEN 1 AND 4096)
) STRICT;

CREATE INDEX {schema}.keyhold_challenges_expires_ms ON keyhold_challenges (expires_ms);
