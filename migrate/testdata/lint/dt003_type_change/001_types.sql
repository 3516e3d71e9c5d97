SET lock_timeout = '2s';
-- bad: integer to bigint rewrites the table
ALTER TABLE products ALTER COLUMN id TYPE bigint;
-- bad: USING always rewrites
ALTER TABLE payments ALTER COLUMN amount TYPE numeric(16,2) USING round(amount, 2);
-- warning: safe only if it widens
ALTER TABLE users ALTER COLUMN city TYPE varchar(200);
-- good: a new table
CREATE TABLE t (a int);
ALTER TABLE t ALTER COLUMN a TYPE bigint;
