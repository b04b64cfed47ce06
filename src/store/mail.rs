//! What the mail channel asks of the store: has this mail been handled, how
//! far has a mailbox been read. (The daily answer caps are quotas.)
//! The records themselves are [`Write::MailReceived`] and
//! [`Write::MailCheckpoint`], committed with the turn a mail causes.

use super::{on_db, Result, Store};

/// Where an IMAP mailbox was last read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uidvalidity: i64,
    pub last_uid: i64,
}

impl Store {
    /// Whether a mail with this key has been handled (answered or skipped).
    pub async fn mail_seen(&self, message_key: &str) -> Result<bool> {
        const SQL: &str = "SELECT 1 FROM mail_received WHERE message_key = $1";
        let row: Option<(i32,)> = on_db!(&self.db, p => sqlx::query_as(SQL).bind(message_key).fetch_optional(p).await?);
        Ok(row.is_some())
    }

    /// How one inbound mail was handled, for operators and tests:
    /// `(outcome, reason, conversation_id)`.
    pub async fn mail_outcome(&self, message_key: &str) -> Result<Option<(String, Option<String>, Option<i64>)>> {
        const SQL: &str = "SELECT outcome, reason, conversation_id FROM mail_received WHERE message_key = $1";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).bind(message_key).fetch_optional(p).await?))
    }

    /// Mails recorded, and of those answered: `(handled, answered)`.
    pub async fn mail_counts(&self) -> Result<(i64, i64)> {
        const SQL: &str =
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN outcome = 'skipped' THEN 0 ELSE 1 END), 0) FROM mail_received";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).fetch_one(p).await?))
    }

    pub async fn mail_checkpoint(&self, mailbox: &str) -> Result<Option<Checkpoint>> {
        const SQL: &str = "SELECT uidvalidity, last_uid FROM mail_checkpoints WHERE mailbox = $1";
        let row: Option<(i64, i64)> = on_db!(&self.db, p => sqlx::query_as(SQL).bind(mailbox).fetch_optional(p).await?);
        Ok(row.map(|(uidvalidity, last_uid)| Checkpoint { uidvalidity, last_uid }))
    }
}
