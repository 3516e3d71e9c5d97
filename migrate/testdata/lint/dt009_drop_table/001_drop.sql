SET lock_timeout = '2s';
-- warning (no workload to check)
DROP TABLE ticket_status_history;
DROP VIEW IF EXISTS open_tickets;
-- good: created in the same release
CREATE TABLE scratch (id int);
DROP TABLE scratch;
