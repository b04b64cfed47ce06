-- A contact's user name and e-mail address stay unique, now by named unique
-- indexes instead of column constraints: a first import into an empty
-- directory drops a table's indexes, writes its rows and builds them after
-- (a sort each, instead of millions of random B-tree inserts), and SQLite
-- cannot drop the index of a column constraint.
--
-- SQLite cannot change a column's constraints, so the table is rebuilt.
-- Migrations run in a transaction, where foreign_keys cannot be turned off
-- (and renaming a parent table would rewrite recovery_tokens' reference to
-- the old name): with the checks deferred to the commit, dropping the old
-- table leaves the recovery tokens without their contacts for a moment,
-- and copying the rows into the new `contacts` gives each back.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE contacts_before_0008 AS SELECT * FROM contacts;
DROP TABLE contacts;

CREATE TABLE contacts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        TEXT    NOT NULL REFERENCES companies (org_id),
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL,
    first_name    TEXT    NOT NULL,
    last_name     TEXT    NOT NULL,
    last_name_key TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL,
    phone         TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
INSERT INTO contacts (id, org_id, username, username_key, first_name, last_name, last_name_key, email, email_key,
                      phone, role, status, created_at, updated_at)
SELECT id, org_id, username, username_key, first_name, last_name, last_name_key, email, email_key,
       phone, role, status, created_at, updated_at
  FROM contacts_before_0008;
DROP TABLE contacts_before_0008;

CREATE UNIQUE INDEX contacts_by_username ON contacts (username_key);
-- E-mail addresses are unique, case-insensitively.
CREATE UNIQUE INDEX contacts_by_email ON contacts (email_key);
CREATE INDEX contacts_by_company ON contacts (org_id);
