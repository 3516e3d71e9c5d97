-- A schema exercising every feature a clone must carry over, with generated
-- data. Loaded into a fresh database by the clone tests; the "orders" table
-- is a few MB so that a low split threshold splits it into ctid ranges.

CREATE EXTENSION citext;
CREATE EXTENSION pg_trgm;

CREATE SCHEMA "Sales";

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN email AS citext CHECK (VALUE LIKE '%@%');
CREATE TYPE address AS (street text, city text, zip integer);
CREATE TYPE "Sales".money_pair AS (amount numeric(12,2), currency char(3));
CREATE TYPE floatrange AS RANGE (subtype = float8);

-- Binary-safe columns of every kind, an identity column, a generated column
-- and a trigram index from an extension.
CREATE TABLE customers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    email      email UNIQUE,
    mood       mood NOT NULL DEFAULT 'ok',
    tags       text[],
    scores     integer[],
    profile    jsonb,
    avatar     bytea,
    bio        text,
    balance    numeric(14,2),
    ratio      double precision,
    span       floatrange,
    seen_at    timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00',
    legacy     text,
    name_upper text GENERATED ALWAYS AS (upper(name)) STORED
);
ALTER TABLE customers DROP COLUMN legacy;
CREATE INDEX customers_name_trgm ON customers USING gin (name gin_trgm_ops);
-- An expression index: ANALYZE gathers statistics on its expression.
CREATE INDEX customers_name_lower ON customers (lower(name));
COMMENT ON TABLE customers IS 'people who buy things';

INSERT INTO customers (name, email, mood, tags, scores, profile, avatar, bio, balance, ratio, span, seen_at)
SELECT 'Customer ' || i,
       'c' || i || '@Example.com',
       (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::mood,
       ARRAY['t' || i % 7, 'tag with space', NULL],
       ARRAY[i, i * 2, -i],
       jsonb_build_object('i', i, 'nested', jsonb_build_object('k', repeat('v', i % 20)), 'arr', jsonb_build_array(1, 'two', NULL)),
       decode(md5(i::text) || md5((i * 7)::text), 'hex'),
       -- large, barely compressible text: stored out of line (TOAST)
       CASE WHEN i % 10 = 0 THEN (SELECT string_agg(md5(i::text || g::text), '') FROM generate_series(1, 300) g) END,
       (i * 12.34)::numeric(14,2),
       i / 3.0::float8 + 1e-15,
       floatrange(i, i + 0.5),
       '2024-01-01 00:00:00+00'::timestamptz + i * interval '37 minutes'
FROM generate_series(1, 600) i;

-- Columns whose binary COPY form embeds type OIDs: the table must go as text.
CREATE TABLE customer_extras (
    customer_id bigint PRIMARY KEY REFERENCES customers (id),
    moods       mood[],
    addr        address,
    addrs       address[],
    counts      posint[],
    money       "Sales".money_pair
);
INSERT INTO customer_extras
SELECT i,
       ARRAY['happy', 'sad']::mood[],
       ROW('Main St ' || i, 'City "' || i % 5 || '"', 10000 + i)::address,
       ARRAY[ROW('a', 'b', 1)::address, ROW(NULL, 'c,d', NULL)::address],
       ARRAY[i, i + 1]::posint[],
       ROW(i * 1.5, 'EUR')::"Sales".money_pair
FROM generate_series(1, 300) i;

-- Arrays of user-defined types whose binary form names the element type
-- only in each array's header: binary COPY, the OID rewritten on the way.
CREATE TABLE mood_log (
    id     integer PRIMARY KEY,
    moods  mood[],
    grid   mood[],
    counts posint[],
    mails  email[]
);
INSERT INTO mood_log
SELECT i,
       CASE i % 10 WHEN 0 THEN NULL WHEN 1 THEN '{}'::mood[] ELSE ARRAY['happy', NULL, 'sad']::mood[] END,
       ARRAY[['ok', 'sad'], ['happy', 'ok']]::mood[],
       ARRAY[i, i + 1]::posint[],
       ARRAY['A' || i || '@Example.org', NULL]::email[]
FROM generate_series(1, 200) i;

-- The big one: serial key, a domain column, a foreign key, a trigger.
CREATE TABLE orders (
    id          serial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    qty         posint NOT NULL,
    total       numeric(12,2) NOT NULL,
    placed_on   date NOT NULL,
    status      text NOT NULL DEFAULT 'new',
    note        text
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_placed ON orders (placed_on) WHERE status <> 'cancelled';
INSERT INTO orders (customer_id, qty, total, placed_on, status, note)
SELECT 1 + i % 600, 1 + i % 9, (i % 1000) * 1.25, date '2024-01-01' + i % 700,
       (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + i % 4],
       'note ' || md5(i::text) || repeat(' filler', 10)
FROM generate_series(1, 30000) i;
-- leave a hole in the sequence and some dead tuples behind
DELETE FROM orders WHERE id % 97 = 0;
UPDATE orders SET status = 'refunded' WHERE id % 89 = 0;
-- Extended statistics, which only ANALYZE on the clone can gather.
CREATE STATISTICS orders_status_placed (dependencies) ON status, placed_on FROM orders;

CREATE FUNCTION orders_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.note := coalesce(NEW.note, '') || ' (touched)';
    RETURN NEW;
END $$;
CREATE TRIGGER orders_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_touch();

-- Declarative partitioning, two levels: only leaves hold rows.
CREATE TABLE events (
    id      bigint GENERATED BY DEFAULT AS IDENTITY,
    at      date NOT NULL,
    kind    text NOT NULL,
    payload jsonb,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
    PARTITION BY HASH (id);
CREATE TABLE events_2025_h0 PARTITION OF events_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE events_2025_h1 PARTITION OF events_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO events (at, kind, payload)
SELECT date '2024-06-01' + i % 400, (ARRAY['click', 'view', 'buy'])[1 + i % 3], jsonb_build_object('n', i)
FROM generate_series(1, 3000) i;

-- Old-style inheritance: the parent's rows and the child's are separate.
CREATE TABLE notes (id integer PRIMARY KEY, body text);
-- Storage options the clone must keep as they are (it turns autovacuum off
-- while it builds, then puts these back).
ALTER TABLE notes SET (autovacuum_enabled = false, toast.autovacuum_enabled = true, fillfactor = 90);
CREATE TABLE urgent_notes (level integer NOT NULL DEFAULT 1) INHERITS (notes);
INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 50) i;
INSERT INTO urgent_notes SELECT i, 'urgent ' || i, i % 3 FROM generate_series(51, 80) i;

-- A quoted, mixed-case table in another schema, with a composite column.
CREATE TABLE "Sales"."Quarterly Report" (
    "Region" text NOT NULL,
    "Q"      integer NOT NULL CHECK ("Q" BETWEEN 1 AND 4),
    amount   "Sales".money_pair,
    PRIMARY KEY ("Region", "Q")
);
INSERT INTO "Sales"."Quarterly Report"
SELECT r, q, ROW(q * 1000.5, 'USD')::"Sales".money_pair
FROM unnest(ARRAY['North', 'South', 'East''s', 'We"st']) r, generate_series(1, 4) q;

CREATE SEQUENCE "Sales".invoice_no START 1000 INCREMENT 5;
SELECT nextval('"Sales".invoice_no') FROM generate_series(1, 3);
CREATE SEQUENCE fresh_seq; -- never used: is_called stays false

CREATE TABLE empty_table (id integer PRIMARY KEY, v text);
CREATE UNLOGGED TABLE scratch (k text PRIMARY KEY, v integer);
INSERT INTO scratch SELECT 'k' || i, i FROM generate_series(1, 100) i;

-- A table whose only column is generated: COPY has nothing to name.
CREATE TABLE only_generated (g integer GENERATED ALWAYS AS (42) STORED);
INSERT INTO only_generated DEFAULT VALUES;
INSERT INTO only_generated DEFAULT VALUES;

-- Views and materialized views, one reading another, one never populated.
CREATE VIEW customer_orders AS
SELECT c.id, c.name, count(o.id) AS orders, sum(o.total) AS spent
FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
GROUP BY c.id, c.name;
CREATE MATERIALIZED VIEW order_totals AS
SELECT customer_id, count(*) AS n, sum(total) AS total FROM orders GROUP BY customer_id;
CREATE UNIQUE INDEX order_totals_pk ON order_totals (customer_id);
CREATE MATERIALIZED VIEW top_customers AS
SELECT customer_id, total FROM order_totals WHERE total > 40000;
CREATE MATERIALIZED VIEW never_populated AS SELECT 1 AS one WITH NO DATA;

-- A large object.
SELECT lo_from_bytea(424242, convert_to(repeat('large object data ', 100000), 'UTF8'));

ANALYZE;

-- Statistics over a partitioned table exist only where someone ran ANALYZE
-- on it (autovacuum never does): events has them (the ANALYZE above),
-- readings, created after it, does not. The clone must end up the same.
CREATE TABLE readings (sensor int NOT NULL, value float8) PARTITION BY LIST (sensor);
CREATE TABLE readings_1 PARTITION OF readings FOR VALUES IN (1);
CREATE TABLE readings_2 PARTITION OF readings FOR VALUES IN (2);
INSERT INTO readings SELECT 1 + i % 2, i / 7.0 FROM generate_series(1, 500) i;
