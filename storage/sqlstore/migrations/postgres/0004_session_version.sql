-- 0004: sessions get a compare-and-swap version, as refresh families have
-- (storage.Session.Version): PutSession writes only if the stored version
-- is the one the caller read, so a write of a session read before a
-- logout, revoke or lock cannot undo it. Sessions stored before this
-- migration start at version 1.
ALTER TABLE {schema}.keyhold_sessions ADD COLUMN version bigint NOT NULL DEFAULT 1 CHECK (version >= 1);
