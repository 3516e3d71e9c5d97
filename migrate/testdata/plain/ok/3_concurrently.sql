-- dbtwin:no-transaction
CREATE INDEX CONCURRENTLY plainies_b_idx ON plainies (b);
