//! Discord's private places (a member's private thread or DM channel), and
//! the replies a channel still owes its customers.

use super::{Result, Store};

/// Where a member's private conversation lives.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PrivatePlace {
    pub user_id: String,
    pub channel_id: String,
    /// `thread` or `dm`.
    pub kind: String,
}

/// An outbound message a channel has not delivered yet, with the key of its
/// conversation (who it is for).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Undelivered {
    pub conv_key: String,
    pub conversation_id: i64,
    pub seq: i64,
}

impl Store {
    pub async fn discord_private(&self, user_id: &str) -> Result<Option<PrivatePlace>> {
        const SQL: &str = "SELECT user_id, channel_id, kind FROM discord_private WHERE user_id = $1";
        Ok(sqlx::query_as(SQL).bind(user_id).fetch_optional(&self.pool).await?)
    }

    /// Whose private place a channel is, if anyone's.
    pub async fn discord_private_owner(&self, channel_id: &str) -> Result<Option<PrivatePlace>> {
        const SQL: &str = "SELECT user_id, channel_id, kind FROM discord_private WHERE channel_id = $1";
        Ok(sqlx::query_as(SQL).bind(channel_id).fetch_optional(&self.pool).await?)
    }

    /// Records `place` unless the member already has one, and returns the one
    /// that holds: two instances racing to open a thread agree on the first.
    pub async fn claim_discord_private(&self, place: &PrivatePlace, now_ms: i64) -> Result<PrivatePlace> {
        const SQL: &str =
            "INSERT INTO discord_private (user_id, channel_id, kind, created_at) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT (user_id) DO NOTHING";
        sqlx::query(SQL)
            .bind(&place.user_id)
            .bind(&place.channel_id)
            .bind(&place.kind)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map(|_| ())?;
        Ok(self.discord_private(&place.user_id).await?.unwrap_or_else(|| place.clone()))
    }

    /// Forgets a place Discord no longer has (a deleted thread); the next
    /// message opens a new one.
    pub async fn forget_discord_private(&self, user_id: &str, channel_id: &str) -> Result<()> {
        const SQL: &str = "DELETE FROM discord_private WHERE user_id = $1 AND channel_id = $2";
        sqlx::query(SQL).bind(user_id).bind(channel_id).execute(&self.pool).await.map(|_| ())?;
        Ok(())
    }

    /// Outbound messages of a channel still undelivered, written between
    /// `since_ms` and `before_ms` (younger ones may be on their way), oldest
    /// first.
    pub async fn undelivered_on(
        &self,
        channel: &str,
        since_ms: i64,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<Undelivered>> {
        const SQL: &str = "SELECT c.conv_key, m.conversation_id, m.seq FROM messages m \
                           JOIN conversations c ON c.id = m.conversation_id \
                           WHERE m.channel = $1 AND m.direction = 'out' AND m.delivered_at IS NULL \
                           AND m.created_at > $2 AND m.created_at < $3 ORDER BY m.id LIMIT $4";
        Ok(sqlx::query_as(SQL).bind(channel).bind(since_ms).bind(before_ms).bind(limit).fetch_all(&self.pool).await?)
    }
}
