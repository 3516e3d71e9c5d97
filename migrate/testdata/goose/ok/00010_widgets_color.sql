-- +goose up
ALTER TABLE widgets ADD COLUMN color text; ALTER TABLE widgets ADD COLUMN size int;
