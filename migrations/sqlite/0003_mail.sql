-- Inbound support mail. Every mail frontdesk reads is recorded here once, by
-- its Message-ID (or a hash of the raw mail when it has none), in the same
-- transaction as the conversation turn it caused; mail that is skipped
-- (auto-replies, bounces, lists, over the daily cap) is recorded with the
-- reason. A mail whose key is here is never processed again.

CREATE TABLE mail_received (
    message_key      TEXT    PRIMARY KEY,
    source           TEXT    NOT NULL,             -- imap:<mailbox>, maildir, ingest
    sender           TEXT    NOT NULL,             -- where answers go (Reply-To, else From), lower-case; '' when none
    subject          TEXT    NOT NULL,
    outcome          TEXT    NOT NULL,             -- answered, continued, skipped
    reason           TEXT,                          -- why it was skipped
    conversation_id  INTEGER,
    received_at      INTEGER NOT NULL
);

-- The per-sender daily answer cap counts from here.
CREATE INDEX mail_received_by_sender ON mail_received (sender, received_at);

-- How far each IMAP mailbox has been read. A new UIDVALIDITY starts it again
-- from the first UID; mail_received keeps that from answering anything twice.
CREATE TABLE mail_checkpoints (
    mailbox      TEXT    PRIMARY KEY,
    uidvalidity  INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- A reply finds its thread's latest conversation by key, whatever its status
-- (conversations_open covers only open ones).
CREATE INDEX conversations_by_key ON conversations (channel, conv_key);
