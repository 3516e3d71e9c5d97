-- bad on PostgreSQL 11 (this case lints for server_major 11): in a transaction
-- +goose Up
ALTER TYPE order_status ADD VALUE 'on_hold';
