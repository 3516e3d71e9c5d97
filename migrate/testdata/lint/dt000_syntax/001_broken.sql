-- bad: does not parse (the error names the line of the mistake)
ALTER TABLE users
    ADD COLUMN;
-- good: parses
SELECT 1;
