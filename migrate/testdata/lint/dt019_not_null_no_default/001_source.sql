SET lock_timeout = '2s';
-- bad: after DROP DEFAULT, old INSERTs that leave the column out fail
ALTER TABLE users ADD COLUMN signup_source text NOT NULL DEFAULT 'web';
ALTER TABLE users ALTER COLUMN signup_source DROP DEFAULT;
-- bad: backfilled then NOT NULL without a default
ALTER TABLE users ADD COLUMN referrer text;
UPDATE users SET referrer = 'none' WHERE referrer IS NULL;
ALTER TABLE users ADD CONSTRAINT users_referrer_not_null CHECK (referrer IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_referrer_not_null;
ALTER TABLE users ALTER COLUMN referrer SET NOT NULL;
-- good: NOT NULL with a default that stays
ALTER TABLE users ADD COLUMN plan_tier text NOT NULL DEFAULT 'basic';
