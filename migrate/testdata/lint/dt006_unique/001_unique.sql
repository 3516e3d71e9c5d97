SET lock_timeout = '2s';
-- bad: builds the index under ACCESS EXCLUSIVE
ALTER TABLE payments ADD CONSTRAINT payments_iban_key UNIQUE (iban);
ALTER TABLE ticket_status_history ADD PRIMARY KEY (id);
ALTER TABLE users ADD COLUMN external_id text UNIQUE;
-- good: USING an index built CONCURRENTLY earlier
ALTER TABLE accounts ADD CONSTRAINT accounts_vat_number_key UNIQUE USING INDEX accounts_vat_number_idx;
