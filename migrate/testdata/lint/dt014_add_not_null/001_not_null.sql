SET lock_timeout = '2s';
-- bad: fails if users has rows
ALTER TABLE users ADD COLUMN tenant_region text NOT NULL;
-- good: with a default (no rewrite since PostgreSQL 11)
ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';
