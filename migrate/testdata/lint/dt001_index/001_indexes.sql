SET lock_timeout = '2s';
-- bad: blocks writes to an existing table while it builds
CREATE INDEX users_city_idx ON users (city);
CREATE UNIQUE INDEX orders_public_id_key2 ON orders (public_id);
-- good: a table created in the same migration is empty and unused
CREATE TABLE coupons (id bigint PRIMARY KEY, code text NOT NULL);
CREATE UNIQUE INDEX coupons_code_key ON coupons (code);
