SET lock_timeout = '2s';
-- bad: scans users under ACCESS EXCLUSIVE
ALTER TABLE users ALTER COLUMN phone SET NOT NULL;
-- the safe way, step 1: a NOT VALID check
ALTER TABLE users ADD CONSTRAINT users_city_not_null CHECK (city IS NOT NULL) NOT VALID;
