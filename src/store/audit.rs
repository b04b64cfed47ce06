//! The audit log: who did what (every lookup, mail and account change).

use super::{
    exec::Conn,
    sql::{pow2_chunks, Sql, ROWS_PER_STATEMENT},
    Result, Store,
};
use serde_json::Value;

/// One audit entry, written with the turn or transaction that did the act.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    pub channel: String,
    pub actor: String,
    pub by_agent: Option<String>,
    pub action: String,
    pub subject: String,
    pub detail: Value,
}

/// An entry as read back: `(at, channel, actor, by_agent, action, subject)`.
pub type AuditRow = (i64, String, String, Option<String>, String, String);

/// Writes entries, many rows per statement: a turn's writes are mostly
/// these, and each statement is a round trip.
pub(super) async fn insert(tx: &mut impl Conn, entries: &[(Option<i64>, &Audit)], now: i64) -> Result<()> {
    for chunk in pow2_chunks(entries, ROWS_PER_STATEMENT) {
        let mut q = Sql::new(
            tx,
            "INSERT INTO audit_log (at, channel, actor, by_agent, action, subject, detail, conversation_id) VALUES ",
        );
        q.rows(chunk, |v, (conversation, a)| {
            v.bind(now).bind(a.channel.as_str()).bind(a.actor.as_str()).bind(a.by_agent.as_deref());
            v.bind(a.action.as_str()).bind(a.subject.as_str()).bind(a.detail.to_string()).bind(*conversation);
        });
        tx.run(q).await?;
    }
    Ok(())
}

impl Store {
    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditRow>> {
        const SQL: &str =
            "SELECT at, channel, actor, by_agent, action, subject FROM audit_log ORDER BY id DESC LIMIT $1";
        Ok(sqlx::query_as(SQL).bind(limit).fetch_all(&self.pool).await?)
    }
}
