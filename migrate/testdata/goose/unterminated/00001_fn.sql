-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
