CREATE TABLE things (id int PRIMARY KEY, label text);
