//! Rate limits, counted from the audit log: durable, and shared by every
//! instance on one database.

use std::time::Duration;

use crate::{
    config::Limit,
    store::{on_db, Store},
};

pub(crate) enum Scope<'a> {
    /// Who asked (the channel identity).
    Actor(&'a str),
    /// What was asked about (a searched identifier, a contact).
    Subject(&'a str),
}

/// `Some(wait)` when `limit` is used up for this scope and action.
pub(crate) async fn exceeded(
    store: &Store,
    scope: Scope<'_>,
    action: &str,
    limit: Limit,
    now: i64,
) -> Result<Option<Duration>, crate::store::StoreError> {
    let since = now - limit.period.as_millis() as i64;
    let (sql, key) = match scope {
        Scope::Actor(a) => ("SELECT COUNT(*), MIN(at) FROM audit_log WHERE actor = $1 AND action = $2 AND at > $3", a),
        Scope::Subject(s) => {
            ("SELECT COUNT(*), MIN(at) FROM audit_log WHERE subject = $1 AND action = $2 AND at > $3", s)
        }
    };
    let (count, oldest): (i64, Option<i64>) =
        on_db!(&store.db, p => sqlx::query_as(sql).bind(key).bind(action).bind(since).fetch_one(p).await?);
    if count < limit.count {
        return Ok(None);
    }
    let free_at = oldest.unwrap_or(now) + limit.period.as_millis() as i64;
    Ok(Some(Duration::from_millis((free_at - now).max(1000) as u64)))
}
