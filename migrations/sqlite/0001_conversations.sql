-- Conversations, their transcript, and the flow sources they are pinned to.
-- Integer columns are 64-bit on both backends; times are Unix milliseconds.

CREATE TABLE conversations (
    id           INTEGER PRIMARY KEY,          -- chosen by the engine (random 63-bit)
    channel      TEXT    NOT NULL,
    conv_key     TEXT    NOT NULL,             -- the channel's conversation key
    sender       TEXT    NOT NULL,             -- sender identity
    verified     TEXT,                         -- how the sender was verified, if at all
    started_by   TEXT,                         -- the agent who started the flow, if one did
    flow         TEXT    NOT NULL,
    flow_hash    TEXT    NOT NULL,             -- pinned flow source (flow_sources.hash)
    journal      TEXT    NOT NULL,             -- JSON: start params and effect results
    status       TEXT    NOT NULL CHECK (status IN ('waiting', 'scheduled', 'done', 'failed', 'handed_off')),
    prompt       TEXT,                         -- JSON of the prompt the customer is asked
    end_reason   TEXT,
    next_seq     INTEGER NOT NULL,             -- seq of the next transcript message
    expires_at   INTEGER,                      -- idle expiry while waiting
    wake_at      INTEGER,                      -- timer while scheduled
    version      INTEGER NOT NULL,             -- optimistic concurrency
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- At most one open conversation per channel conversation key.
CREATE UNIQUE INDEX conversations_open ON conversations (channel, conv_key)
    WHERE status IN ('waiting', 'scheduled', 'handed_off');
CREATE INDEX conversations_expiry ON conversations (expires_at) WHERE status = 'waiting';
CREATE INDEX conversations_timers ON conversations (wake_at) WHERE status = 'scheduled';

-- Transcript: every inbound and outbound message, in order. Outbound rows
-- stay undelivered (delivered_at NULL) until the channel acknowledges them;
-- they are looked up per conversation, through messages_by_conversation.
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id) DEFERRABLE INITIALLY DEFERRED,
    seq              INTEGER NOT NULL,
    direction        TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    channel          TEXT    NOT NULL,
    external_id      TEXT,                     -- inbound platform message id, for dedupe
    body             TEXT    NOT NULL,         -- JSON
    delivered_at     INTEGER,
    created_at       INTEGER NOT NULL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);
CREATE UNIQUE INDEX messages_inbound_once ON messages (channel, external_id) WHERE external_id IS NOT NULL;

-- Every flow source a conversation was ever pinned to, so a conversation
-- keeps running on the version it started with after the file changes.
CREATE TABLE flow_sources (
    hash        TEXT PRIMARY KEY,
    name        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
