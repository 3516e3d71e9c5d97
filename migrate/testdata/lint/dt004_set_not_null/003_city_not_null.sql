SET lock_timeout = '2s';
-- good: the validated check makes SET NOT NULL skip the scan
ALTER TABLE users ALTER COLUMN city SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_city_not_null;
