CREATE TABLE doohickeys (id int PRIMARY KEY, size int);
