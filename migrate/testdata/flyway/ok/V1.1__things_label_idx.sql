-- Flyway runs a migration with a non-transactional statement outside a transaction.
CREATE INDEX CONCURRENTLY things_label_idx ON things (label);
