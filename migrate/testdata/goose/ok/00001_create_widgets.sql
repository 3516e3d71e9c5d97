-- A goose migration with a function body in a StatementBegin/End block.
-- +goose Up
CREATE TABLE widgets (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION widgets_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.name := trim(NEW.name);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
INSERT INTO widgets (name) VALUES ('a;b'), ('c');

-- +goose Down
DROP FUNCTION widgets_touch();
DROP TABLE widgets;
