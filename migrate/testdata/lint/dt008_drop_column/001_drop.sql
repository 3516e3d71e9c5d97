SET lock_timeout = '2s';
-- warning (no workload to check): the old application may read it
ALTER TABLE users DROP COLUMN avatar;
-- good: a column added in the same release is not used by the old app
ALTER TABLE users ADD COLUMN temp_flag boolean;
ALTER TABLE users DROP COLUMN temp_flag;
