-- 0008: named, versioned blobs per user (storage.BlobStore), sealed by
-- the user's client (package zk) and opaque to the store.
--
-- user_id and name are bytes (BLOBs, so that lookups compare bytes
-- exactly, with no collation or text-encoding rules, and the primary key
-- orders a user's names by their bytes, as ListBlobs returns them);
-- version is the compare-and-swap version (1 for the first value stored
-- under the name); data is the value, empty for a tombstone. Replaced and
-- deleted values are overwritten on disk through the secure_delete pragma
-- that the Store sets on its connections, as deleted vault records are.
CREATE TABLE {schema}.keyhold_blobs (
    user_id BLOB    NOT NULL CHECK (length(user_id) BETWEEN 1 AND 255),
    name    BLOB    NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    version INTEGER NOT NULL CHECK (version >= 1),
    data    BLOB    NOT NULL CHECK (length(data) <= 1048576),
    PRIMARY KEY (user_id, name)
) STRICT;
