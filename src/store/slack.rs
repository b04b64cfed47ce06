//! Slack's private places: where a member's conversation continues.

use super::{Result, Store};

/// A member's place: a DM channel (`dm`), or a support channel whose
/// ephemeral messages only they see (`ephemeral`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SlackPlace {
    pub channel_id: String,
    pub kind: String,
}

impl Store {
    pub async fn slack_place(&self, user_id: &str) -> Result<Option<SlackPlace>> {
        const SQL: &str = "SELECT channel_id, kind FROM slack_places WHERE user_id = $1";
        Ok(sqlx::query_as(SQL).bind(user_id).fetch_optional(&self.pool).await?)
    }

    /// Records where the member's conversation continues now.
    pub async fn set_slack_place(&self, user_id: &str, place: &SlackPlace, now_ms: i64) -> Result<()> {
        const SQL: &str = "INSERT INTO slack_places (user_id, channel_id, kind, updated_at) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT (user_id) DO UPDATE SET channel_id = excluded.channel_id, \
                           kind = excluded.kind, updated_at = excluded.updated_at";
        sqlx::query(SQL)
            .bind(user_id)
            .bind(&place.channel_id)
            .bind(&place.kind)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
