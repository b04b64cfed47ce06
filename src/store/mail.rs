//! What the mail channel asks of the store: has this mail been handled, how
//! far has a mailbox been read. (The daily answer caps are quotas.)
//! The records themselves are [`MailReceived`] and [`MailCheckpoint`]
//! writes, committed with the turn a mail causes.

use std::collections::BTreeMap;

use super::{
    exec::Conn,
    sql::{pow2_chunks, Sql, ROWS_PER_STATEMENT},
    Result, Store,
};

/// An inbound mail was handled (answered, continued a conversation, or
/// skipped with a reason); a mail recorded once is never handled again.
#[derive(Debug, Clone, PartialEq)]
pub struct MailReceived {
    pub message_key: String,
    pub source: String,
    pub sender: String,
    pub subject: String,
    pub outcome: String,
    pub reason: Option<String>,
}

/// An IMAP mailbox has been read up to `uid` (never moves back within one
/// UIDVALIDITY; a new UIDVALIDITY replaces it).
#[derive(Debug, Clone, PartialEq)]
pub struct MailCheckpoint {
    pub mailbox: String,
    pub uidvalidity: i64,
    pub uid: i64,
}

pub(super) async fn insert_received(
    tx: &mut impl Conn,
    mails: &[(Option<i64>, &MailReceived)],
    now: i64,
) -> Result<()> {
    for chunk in pow2_chunks(mails, ROWS_PER_STATEMENT) {
        let mut q = Sql::new(
            tx,
            "INSERT INTO mail_received (message_key, source, sender, subject, outcome, reason, conversation_id, \
             received_at) VALUES ",
        );
        q.rows(chunk, |v, (conversation, m)| {
            v.bind(m.message_key.as_str()).bind(m.source.as_str()).bind(m.sender.as_str()).bind(m.subject.as_str());
            v.bind(m.outcome.as_str()).bind(m.reason.as_deref()).bind(*conversation).bind(now);
        });
        q.push(" ON CONFLICT (message_key) DO NOTHING");
        tx.run(q).await?;
    }
    Ok(())
}

/// Moves mailboxes' checkpoints on: only the furthest point per mailbox
/// matters, and a new UIDVALIDITY (later in the list) replaces the old.
pub(super) async fn save_checkpoints(tx: &mut impl Conn, points: &[&MailCheckpoint], now: i64) -> Result<()> {
    let mut furthest: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for p in points {
        match furthest.get_mut(p.mailbox.as_str()) {
            Some((v, u)) if *v == p.uidvalidity => *u = (*u).max(p.uid),
            _ => {
                furthest.insert(p.mailbox.as_str(), (p.uidvalidity, p.uid));
            }
        }
    }
    for (mailbox, (uidvalidity, uid)) in furthest {
        tx.run(
            Sql::fixed(
                "INSERT INTO mail_checkpoints (mailbox, uidvalidity, last_uid, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mailbox) DO UPDATE SET last_uid = CASE WHEN mail_checkpoints.uidvalidity <> \
             excluded.uidvalidity OR excluded.last_uid > mail_checkpoints.last_uid THEN excluded.last_uid \
             ELSE mail_checkpoints.last_uid END, uidvalidity = excluded.uidvalidity, updated_at = excluded.updated_at",
            )
            .arg(mailbox)
            .arg(uidvalidity)
            .arg(uid)
            .arg(now),
        )
        .await?;
    }
    Ok(())
}

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
        let row: Option<(i64,)> = self.read_first(Sql::fixed(SQL).arg(message_key)).await?;
        Ok(row.is_some())
    }

    /// How one inbound mail was handled, for operators and tests:
    /// `(outcome, reason, conversation_id)`.
    pub async fn mail_outcome(&self, message_key: &str) -> Result<Option<(String, Option<String>, Option<i64>)>> {
        const SQL: &str = "SELECT outcome, reason, conversation_id FROM mail_received WHERE message_key = $1";
        Ok(sqlx::query_as(SQL).bind(message_key).fetch_optional(&self.pool).await?)
    }

    /// Mails recorded, and of those answered: `(handled, answered)`.
    pub async fn mail_counts(&self) -> Result<(i64, i64)> {
        const SQL: &str =
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN outcome = 'skipped' THEN 0 ELSE 1 END), 0) FROM mail_received";
        Ok(sqlx::query_as(SQL).fetch_one(&self.pool).await?)
    }

    pub async fn mail_checkpoint(&self, mailbox: &str) -> Result<Option<Checkpoint>> {
        const SQL: &str = "SELECT uidvalidity, last_uid FROM mail_checkpoints WHERE mailbox = $1";
        let row: Option<(i64, i64)> = sqlx::query_as(SQL).bind(mailbox).fetch_optional(&self.pool).await?;
        Ok(row.map(|(uidvalidity, last_uid)| Checkpoint { uidvalidity, last_uid }))
    }
}
