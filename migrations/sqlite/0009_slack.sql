-- Where a Slack member's conversation continues: the direct-message channel
-- with the app (kind 'dm'), or the support channel whose ephemeral messages
-- only they see (kind 'ephemeral'). One place per member; the latest wins.
CREATE TABLE slack_places (
    user_id     TEXT    PRIMARY KEY,
    channel_id  TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('dm', 'ephemeral')),
    updated_at  INTEGER NOT NULL
);
