-- A contact's user name and e-mail address stay unique, now by named unique
-- indexes instead of column constraints, as on SQLite (where a first import
-- drops and rebuilds a table's indexes; see the SQLite migration).
ALTER TABLE contacts DROP CONSTRAINT contacts_username_key_key;
ALTER TABLE contacts DROP CONSTRAINT contacts_email_key_key;
CREATE UNIQUE INDEX contacts_by_username ON contacts (username_key);
-- E-mail addresses are unique, case-insensitively.
CREATE UNIQUE INDEX contacts_by_email ON contacts (email_key);
