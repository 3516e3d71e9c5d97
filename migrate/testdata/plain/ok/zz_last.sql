/* no numeric prefix: after the numbered ones */
ALTER TABLE plainies ADD COLUMN d int;
