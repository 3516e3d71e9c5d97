-- Findings suppressed with dbtwin:ignore comments.
-- dbtwin:ignore DT001
CREATE INDEX users_city_idx ON users (city);

-- dbtwin:ignore DT003, DT013
-- (the table is tiny, measured in the apply report)
ALTER TABLE accounts ALTER COLUMN plan TYPE varchar(20);

ALTER TABLE accounts ADD COLUMN x text; -- dbtwin:ignore all

/* dbtwin:ignore DT013 — only DT013: DT010 still reported */
ALTER TABLE users RENAME COLUMN phone TO phone_number;
