-- step 2: validate in its own transaction
ALTER TABLE users VALIDATE CONSTRAINT users_city_not_null;
