-- Where each Discord member's private conversation lives: a private thread
-- of a support channel, or the DM channel with the bot. Public channels never
-- see personal data; everything of a conversation goes here instead.
CREATE TABLE discord_private (
    user_id     TEXT    PRIMARY KEY,
    channel_id  TEXT    NOT NULL,                  -- the thread or DM channel
    kind        TEXT    NOT NULL,                  -- thread, dm
    created_at  INTEGER NOT NULL
);

-- A message in a private thread is the owner's, found by the thread.
CREATE UNIQUE INDEX discord_private_by_channel ON discord_private (channel_id);

-- Replies a channel could not send (an API error, a crash between commit and
-- send) and notices written by background work (expiry) are found here and
-- sent again.
CREATE INDEX messages_undelivered ON messages (channel, id) WHERE direction = 'out' AND delivered_at IS NULL;

-- An agent looks a customer's conversations up by who they are (an e-mail
-- customer's conversations are keyed by mail thread).
CREATE INDEX conversations_by_sender ON conversations (channel, sender, created_at);
