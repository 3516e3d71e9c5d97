-- dbtwin:no-transaction
-- good: CONCURRENTLY, in a file that runs outside a transaction
DROP INDEX CONCURRENTLY products_tags_idx;
