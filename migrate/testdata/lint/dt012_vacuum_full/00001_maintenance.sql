-- +goose NO TRANSACTION
-- +goose Up
SET lock_timeout = '2s';
-- bad: rewrites under ACCESS EXCLUSIVE
VACUUM FULL orders;
CLUSTER orders USING orders_pkey;
-- good: plain VACUUM and ANALYZE do not block reads or writes
VACUUM (ANALYZE) orders;
ANALYZE orders;
