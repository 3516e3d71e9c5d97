ALTER TABLE plainies ADD COLUMN c int;
