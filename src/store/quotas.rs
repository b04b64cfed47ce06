//! Rate limits and caps, checked and counted in one serialised step.
//!
//! Why not count audit rows: they are written when a turn commits, so turns
//! running at the same moment all saw the old count, and ten concurrent
//! "pick your name" turns sent ten login mails to one contact under a limit
//! of three. Here a use is taken *before* the thing it limits happens, in a
//! transaction that no other taker of the same quota can interleave with:
//! SQLite's write lock (`BEGIN IMMEDIATE`) on the embedded store, a
//! transaction-scoped advisory lock per quota on PostgreSQL, so instances
//! sharing one database are serialised too.
//!
//! A use is taken under a *hold* key; taking again under the same hold
//! grants without counting, so a turn that fails after taking (and is tried
//! again with the same state) does not pay twice. A turn that never commits
//! keeps its use: limits err on the side of refusing.

use sqlx::Connection as _;

use super::{Db, Result, Store};

/// At most `count` uses of `key` in any `period_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub key: String,
    pub count: i64,
    pub period_ms: i64,
}

impl Quota {
    pub fn new(key: impl Into<String>, limit: crate::config::Limit) -> Quota {
        Quota { key: key.into(), count: limit.count, period_ms: limit.period.as_millis() as i64 }
    }
}

/// What came of taking a use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Counted (or counted before under the same hold).
    Granted,
    /// `quota` is used up until `wait_ms` from now; nothing was counted.
    Refused { quota: String, wait_ms: i64 },
}

impl Store {
    /// Takes one use of every quota in `quotas`, or of none when any is used
    /// up. Atomic against every other taker, on this instance or another.
    pub async fn take_quota(&self, hold: &str, quotas: &[Quota], now_ms: i64) -> Result<Taken> {
        if quotas.is_empty() {
            return Ok(Taken::Granted);
        }
        // Locks in one order everywhere, so two takers of overlapping sets
        // cannot deadlock.
        let mut keys: Vec<&str> = quotas.iter().map(|q| q.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        match &self.db {
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                let taken = take_locked::<sqlx::Sqlite>(&mut tx, hold, quotas, now_ms).await?;
                tx.commit().await?;
                Ok(taken)
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for key in keys {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                let taken = take_locked::<sqlx::Postgres>(&mut tx, hold, quotas, now_ms).await?;
                tx.commit().await?;
                Ok(taken)
            }
        }
    }

    /// Uses of `key` counted since `since_ms` (for tests and operators).
    pub async fn quota_used(&self, key: &str, since_ms: i64) -> Result<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM quota_uses WHERE quota = $1 AND at > $2";
        let (n,): (i64,) =
            super::on_db!(&self.db, p => sqlx::query_as(SQL).bind(key).bind(since_ms).fetch_one(p).await?);
        Ok(n)
    }

    /// Forgets uses older than `before_ms` (no quota looks back that far).
    pub async fn prune_quota_uses(&self, before_ms: i64) -> Result<u64> {
        const SQL: &str = "DELETE FROM quota_uses WHERE at < $1";
        Ok(super::on_db!(&self.db, p => sqlx::query(SQL).bind(before_ms).execute(p).await?.rows_affected()))
    }
}

/// The check and the count, once the quotas are locked: the same SQL on
/// both backends.
async fn take_locked<DB>(conn: &mut DB::Connection, hold: &str, quotas: &[Quota], now: i64) -> Result<Taken>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let (held,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM quota_uses WHERE hold = $1").bind(hold).fetch_one(&mut *conn).await?;
    if held > 0 {
        return Ok(Taken::Granted);
    }
    for q in quotas {
        let (used, oldest): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(at) FROM quota_uses WHERE quota = $1 AND at > $2")
                .bind(q.key.as_str())
                .bind(now - q.period_ms)
                .fetch_one(&mut *conn)
                .await?;
        if used >= q.count {
            let wait_ms = (oldest.unwrap_or(now) + q.period_ms - now).max(1000);
            return Ok(Taken::Refused { quota: q.key.clone(), wait_ms });
        }
    }
    for q in quotas {
        sqlx::query("INSERT INTO quota_uses (hold, quota, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(hold)
            .bind(q.key.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Taken::Granted)
}
