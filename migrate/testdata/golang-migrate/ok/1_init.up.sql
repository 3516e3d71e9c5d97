CREATE TABLE gadgets (id int PRIMARY KEY);
CREATE TABLE parts (id int PRIMARY KEY, gadget_id int REFERENCES gadgets);
