-- migrate:up
CREATE TABLE gizmos (id int PRIMARY KEY, kind text);
INSERT INTO gizmos VALUES (1, 'a');

-- migrate:down
DROP TABLE gizmos;
