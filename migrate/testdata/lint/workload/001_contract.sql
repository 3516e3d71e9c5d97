SET lock_timeout = '2s';
-- breaks the queries that read users.email
ALTER TABLE users RENAME COLUMN email TO email_address;
-- breaks the order page
ALTER TABLE orders DROP COLUMN notes;
-- breaks the ticket queries
ALTER TABLE support_tickets RENAME TO tickets;
-- nobody reads it: info only
ALTER TABLE users DROP COLUMN avatar;
-- breaks INSERTs that leave it out
ALTER TABLE users ADD COLUMN signup_source text NOT NULL DEFAULT 'web';
ALTER TABLE users ALTER COLUMN signup_source DROP DEFAULT;
