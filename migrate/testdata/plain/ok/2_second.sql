ALTER TABLE plainies ADD COLUMN b int;
