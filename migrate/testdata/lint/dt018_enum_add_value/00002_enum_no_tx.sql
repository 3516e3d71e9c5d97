-- good: outside a transaction
-- +goose NO TRANSACTION
-- +goose Up
ALTER TYPE order_status ADD VALUE 'disputed';
