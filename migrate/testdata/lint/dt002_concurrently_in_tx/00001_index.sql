-- bad: goose wraps this file in a transaction; CONCURRENTLY fails there
-- +goose Up
CREATE INDEX CONCURRENTLY users_city_idx ON users (city);
-- +goose Down
DROP INDEX CONCURRENTLY users_city_idx;
