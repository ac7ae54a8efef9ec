-- 0008: named, versioned blobs per user (storage.BlobStore), sealed by
-- the user's client (package zk) and opaque to the store.
--
-- user_id and name are bytes (bytea, so that lookups compare bytes
-- exactly and names sort by their bytes, with no collation or
-- text-encoding rules: a text column would sort by the database's
-- collation, and could not hold a NUL); version is the compare-and-swap
-- version (1 for the first value stored under the name); data is the
-- value, empty for a tombstone. The primary key's index serves ListBlobs
-- in name order.
CREATE TABLE {schema}.keyhold_blobs (
    user_id bytea  NOT NULL CHECK (octet_length(user_id) BETWEEN 1 AND 255),
    name    bytea  NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 128),
    version bigint NOT NULL CHECK (version >= 1),
    data    bytea  NOT NULL CHECK (octet_length(data) <= 1048576),
    PRIMARY KEY (user_id, name)
);
