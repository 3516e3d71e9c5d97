SET lock_timeout = '2s';
-- bad: every old query naming it fails
ALTER TABLE users RENAME COLUMN full_name TO display_name;
-- good: a column added in the same release
ALTER TABLE users ADD COLUMN nick text;
ALTER TABLE users RENAME COLUMN nick TO nickname;
