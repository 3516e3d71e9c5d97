SET lock_timeout = '2s';
-- bad
ALTER TABLE support_tickets RENAME TO tickets;
-- good: a table created in the same release
CREATE TABLE draft (id int);
ALTER TABLE draft RENAME TO drafts;
