-- atlas:txmode none
CREATE INDEX CONCURRENTLY doohickeys_size_idx ON doohickeys (size);
-- edited after hashing
