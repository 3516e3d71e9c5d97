-- good: NO TRANSACTION
-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY users_country_idx ON users (country);
