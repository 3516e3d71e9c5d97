ALTER TABLE things ADD COLUMN later int;
