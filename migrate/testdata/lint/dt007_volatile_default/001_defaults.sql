SET lock_timeout = '2s';
-- bad: every row gets its own value: rewrite
ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();
ALTER TABLE orders ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();
ALTER TABLE orders ADD COLUMN seq bigserial;
-- warning: unknown function
ALTER TABLE orders ADD COLUMN region text DEFAULT pick_region();
-- good: non-volatile defaults are stored once (PostgreSQL 11+)
ALTER TABLE orders ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE orders ADD COLUMN source text NOT NULL DEFAULT 'web';
