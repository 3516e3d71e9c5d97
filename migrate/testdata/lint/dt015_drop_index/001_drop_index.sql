SET lock_timeout = '2s';
-- bad: ACCESS EXCLUSIVE on the table
DROP INDEX orders_pending_idx;
-- good: an index of this release
CREATE TABLE coupons_new (id int, currency text);
CREATE INDEX orders_currency_idx ON coupons_new (currency);
DROP INDEX orders_currency_idx;
