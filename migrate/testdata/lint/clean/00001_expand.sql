-- Expand-only: nothing to report.
-- +goose Up
SET LOCAL lock_timeout = '2s';
ALTER TABLE users ADD COLUMN preferred_language text;
ALTER TABLE orders ADD CONSTRAINT orders_total_nonnegative CHECK (total >= 0) NOT VALID;
CREATE TABLE user_settings (user_id bigint PRIMARY KEY REFERENCES users (id), theme text NOT NULL DEFAULT 'light');
CREATE INDEX user_settings_theme_idx ON user_settings (theme);
UPDATE users SET preferred_language = 'en' WHERE id < 1000;
-- +goose Down
ALTER TABLE users DROP COLUMN preferred_language;
