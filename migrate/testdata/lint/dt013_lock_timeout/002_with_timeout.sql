-- good: lock_timeout set first (in this migration: runners may switch sessions)
SET LOCAL lock_timeout = '2s';
ALTER TABLE accounts ADD COLUMN banner_url text;
-- bad again: turned off
SET lock_timeout = 0;
ALTER TABLE accounts DROP COLUMN banner_url;
-- good: set_config works too
SELECT set_config('lock_timeout', '1s', true);
ALTER TABLE accounts ADD COLUMN theme text;
