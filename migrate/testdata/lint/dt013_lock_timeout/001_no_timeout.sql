-- bad: no lock_timeout in this migration
ALTER TABLE accounts ADD COLUMN logo_url text;
