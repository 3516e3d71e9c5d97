ALTER TABLE gadgets ADD COLUMN name text;
