SET lock_timeout = '2s';
-- bad: validates every row while blocking writes
ALTER TABLE support_tickets ADD CONSTRAINT support_tickets_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE products ADD CONSTRAINT products_name_length CHECK (length(name) < 500);
-- good: NOT VALID, then VALIDATE
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
