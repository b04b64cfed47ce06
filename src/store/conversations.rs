//! Conversations, their transcript and the flow sources they are pinned to.
//! (A turn's writes go through the [`super::writer`].)

use super::{sql::Sql, ConversationRow, MessageRow, Result, Store};

impl Store {
    /// How many conversations are in each status (for the metrics).
    pub async fn conversations_by_status(&self) -> Result<Vec<(String, i64)>> {
        const SQL: &str = "SELECT status, COUNT(*) FROM conversations GROUP BY status";
        Ok(sqlx::query_as(SQL).fetch_all(&self.pool).await?)
    }

    /// The open conversation (waiting, scheduled or handed off) for a key.
    pub async fn open_conversation(&self, channel: &str, key: &str) -> Result<Option<ConversationRow>> {
        const SQL: &str = "SELECT * FROM conversations WHERE channel = $1 AND conv_key = $2 \
                           AND status IN ('waiting', 'scheduled', 'handed_off')";
        self.read_first(Sql::fixed(SQL).arg(channel).arg(key)).await
    }

    /// The most recent conversation for a key, whatever its status: the one
    /// with the latest transcript row (ids are random, and two conversations
    /// can start in the same millisecond).
    pub async fn latest_conversation(&self, channel: &str, key: &str) -> Result<Option<ConversationRow>> {
        const SQL: &str = "SELECT c.* FROM conversations c WHERE c.channel = $1 AND c.conv_key = $2 \
                           ORDER BY (SELECT MAX(m.id) FROM messages m WHERE m.conversation_id = c.id) DESC, \
                           c.created_at DESC LIMIT 1";
        self.read_first(Sql::fixed(SQL).arg(channel).arg(key)).await
    }

    /// The latest conversation of a customer on a channel, by who they are
    /// rather than by conversation key.
    pub async fn latest_conversation_of(&self, channel: &str, sender: &str) -> Result<Option<ConversationRow>> {
        const SQL: &str =
            "SELECT * FROM conversations WHERE channel = $1 AND sender = $2 ORDER BY created_at DESC, id DESC LIMIT 1";
        Ok(sqlx::query_as(SQL).bind(channel).bind(sender).fetch_optional(&self.pool).await?)
    }

    /// Whether an inbound platform message was already processed.
    pub async fn inbound_seen(&self, channel: &str, external_id: &str) -> Result<bool> {
        const SQL: &str = "SELECT 1 FROM messages WHERE channel = $1 AND external_id = $2";
        let row: Option<(i64,)> = self.read_first(Sql::fixed(SQL).arg(channel).arg(external_id)).await?;
        Ok(row.is_some())
    }

    /// The whole transcript of a conversation, in order.
    pub async fn transcript(&self, conversation_id: i64) -> Result<Vec<MessageRow>> {
        const SQL: &str = "SELECT * FROM messages WHERE conversation_id = $1 ORDER BY seq, id";
        Ok(sqlx::query_as(SQL).bind(conversation_id).fetch_all(&self.pool).await?)
    }

    /// Outbound messages of a conversation not yet acknowledged by a channel.
    pub async fn undelivered(&self, conversation_id: i64) -> Result<Vec<MessageRow>> {
        const SQL: &str = "SELECT * FROM messages WHERE conversation_id = $1 AND direction = 'out' \
                           AND delivered_at IS NULL ORDER BY seq, id";
        Ok(sqlx::query_as(SQL).bind(conversation_id).fetch_all(&self.pool).await?)
    }

    /// Conversations waiting for the customer past their expiry, oldest first.
    pub async fn expired_conversations(&self, now_ms: i64, limit: i64) -> Result<Vec<ConversationRow>> {
        const SQL: &str = "SELECT * FROM conversations WHERE status = 'waiting' AND expires_at < $1 \
                           ORDER BY expires_at LIMIT $2";
        Ok(sqlx::query_as(SQL).bind(now_ms).bind(limit).fetch_all(&self.pool).await?)
    }

    /// Remembers a flow source so conversations pinned to it survive edits.
    pub async fn save_flow_source(&self, hash: &str, name: &str, source: &str, now_ms: i64) -> Result<()> {
        const SQL: &str = "INSERT INTO flow_sources (hash, name, source, created_at) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT (hash) DO NOTHING";
        sqlx::query(SQL).bind(hash).bind(name).bind(source).bind(now_ms).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn flow_source(&self, hash: &str) -> Result<Option<(String, String)>> {
        const SQL: &str = "SELECT name, source FROM flow_sources WHERE hash = $1";
        Ok(sqlx::query_as(SQL).bind(hash).fetch_optional(&self.pool).await?)
    }
}

/// The average sizes and counts of one channel's conversations (for the
/// engine bench, whose floor writes rows of the same shape).
#[derive(Debug, Clone, Copy)]
pub struct ChannelShape {
    pub journal_bytes: i64,
    pub prompt_bytes: i64,
    pub conversations: i64,
    pub messages: i64,
    pub message_bytes: i64,
    /// Inbound messages (turns).
    pub inbound: i64,
}

impl Store {
    pub async fn channel_shape(&self, channel: &str) -> Result<ChannelShape> {
        const J: &str = "SELECT CAST(COALESCE(AVG(LENGTH(journal)), 0) AS BIGINT), \
                         CAST(COALESCE(AVG(LENGTH(prompt)), 0) AS BIGINT), COUNT(*) FROM conversations \
                         WHERE channel = $1";
        const M: &str =
            "SELECT COUNT(*), CAST(COALESCE(AVG(LENGTH(body)), 0) AS BIGINT) FROM messages WHERE channel = $1";
        const T: &str = "SELECT COUNT(*) FROM messages WHERE channel = $1 AND direction = 'in'";
        let (journal_bytes, prompt_bytes, conversations): (i64, i64, i64) =
            sqlx::query_as(J).bind(channel).fetch_one(&self.pool).await?;
        let (messages, message_bytes): (i64, i64) = sqlx::query_as(M).bind(channel).fetch_one(&self.pool).await?;
        let (inbound,): (i64,) = sqlx::query_as(T).bind(channel).fetch_one(&self.pool).await?;
        Ok(ChannelShape { journal_bytes, prompt_bytes, conversations, messages, message_bytes, inbound })
    }
}
