-- +goose NO TRANSACTION
-- +goose Up
SET lock_timeout = '2s';
-- bad
REINDEX INDEX users_lower_email_idx;
REINDEX TABLE orders;
-- good
REINDEX INDEX CONCURRENTLY users_pkey;
