CREATE TABLE plainies (id int);
