-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY users_preferred_language_idx ON users (preferred_language);
