-- The account directory: companies, their contacts, sales contracts and
-- licenses, with the normalised keys every search kind looks up by.
-- Normalised columns (*_key) are what searches compare: lower-case user
-- names, e-mail addresses and last names; upper-case contract numbers,
-- serials and machine codes without spaces or dashes.

CREATE TABLE companies (
    org_id       TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    name_key     TEXT    NOT NULL,              -- lower-case, single spaces
    street       TEXT    NOT NULL,
    city         TEXT    NOT NULL,
    region       TEXT    NOT NULL DEFAULT '',
    postal_code  TEXT    NOT NULL DEFAULT '',
    country      TEXT    NOT NULL,              -- ISO 3166 alpha-2
    phone        TEXT    NOT NULL,              -- E.164
    status       TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'pending_review', 'refused')),
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX companies_by_name ON companies (name_key, country);

CREATE TABLE contacts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        TEXT    NOT NULL REFERENCES companies (org_id),
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    first_name    TEXT    NOT NULL,
    last_name     TEXT    NOT NULL,
    last_name_key TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,       -- e-mail addresses are unique, case-insensitively
    phone         TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX contacts_by_company ON contacts (org_id);

CREATE TABLE contracts (
    contract_key     TEXT PRIMARY KEY,
    contract_number  TEXT NOT NULL,
    org_id           TEXT NOT NULL REFERENCES companies (org_id),
    admin_username_key TEXT NOT NULL,          -- the administrator contact (contacts.username_key)
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX contracts_by_company ON contracts (org_id);

CREATE TABLE licenses (
    serial_key        TEXT PRIMARY KEY,
    serial_number     TEXT NOT NULL,
    org_id            TEXT NOT NULL REFERENCES companies (org_id),
    product           TEXT NOT NULL,
    machine_code      TEXT,                       -- legacy XP licenses only
    machine_code_key  TEXT,
    updated_at        BIGINT  NOT NULL
);
CREATE INDEX licenses_by_company ON licenses (org_id);
CREATE INDEX licenses_by_machine_code ON licenses (machine_code_key) WHERE machine_code_key IS NOT NULL;

-- A requester asking to be added to a company as a contact.
CREATE TABLE contact_requests (
    number           TEXT    NOT NULL UNIQUE,     -- CR-12345678, for customer service
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id           TEXT    NOT NULL REFERENCES companies (org_id),
    first_name       TEXT    NOT NULL,
    last_name        TEXT    NOT NULL,
    email            TEXT    NOT NULL,
    phone            TEXT    NOT NULL DEFAULT '',
    requester        TEXT    NOT NULL,            -- channel identity that asked
    conversation_id  BIGINT ,
    token_hash       TEXT    NOT NULL UNIQUE,     -- single-use approve/decline link
    status           TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'declined', 'expired')),
    decided_by       TEXT,
    created_at       BIGINT  NOT NULL,
    decided_at       BIGINT 
);
CREATE INDEX contact_requests_by_company ON contact_requests (org_id, status);

-- Single-use password reset tokens, stored as SHA-256 hashes.
CREATE TABLE recovery_tokens (
    token_hash   TEXT    PRIMARY KEY,
    contact_id   BIGINT  NOT NULL REFERENCES contacts (id),
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    used_at      BIGINT ,
    revoked_at   BIGINT 
);
CREATE INDEX recovery_tokens_by_contact ON recovery_tokens (contact_id);

-- Mail to send, queued in the same transaction as the turn that caused it.
CREATE TABLE outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       TEXT    NOT NULL UNIQUE,     -- stable Message-ID
    conversation_id  BIGINT ,
    template         TEXT    NOT NULL,
    to_addr          TEXT    NOT NULL,
    context          TEXT    NOT NULL,            -- JSON for the template
    status           TEXT    NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    locked_until     BIGINT ,                           -- a worker's lease while it sends
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    sent_at          BIGINT 
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'queued';

-- Durable timers (the 6-hour trade-embargo follow-up and the like).
CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,                -- JSON
    due_at       BIGINT  NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts     BIGINT  NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX jobs_due ON jobs (due_at) WHERE status = 'pending';

-- Every lookup, mail and account change, with the identity that caused it.
CREATE TABLE audit_log (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               BIGINT  NOT NULL,
    channel          TEXT    NOT NULL,
    actor            TEXT    NOT NULL,
    by_agent         TEXT,                        -- set when an agent started the flow
    action           TEXT    NOT NULL,
    subject          TEXT    NOT NULL DEFAULT '',
    detail           TEXT    NOT NULL DEFAULT '{}',
    conversation_id  BIGINT 
);
CREATE INDEX audit_log_by_time ON audit_log (at);
-- Rate limits count recent audit entries by who asked and by what was asked about.
CREATE INDEX audit_log_by_actor ON audit_log (actor, action, at);
CREATE INDEX audit_log_by_subject ON audit_log (subject, action, at);
