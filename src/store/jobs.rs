//! Durable timers (the `jobs` table): claimed by pushing their due time past
//! a lease (with `SKIP LOCKED` on PostgreSQL), so a worker that dies mid-job
//! leaves the job to be picked up again.

use super::{exec::Conn, sql::Sql, Result, Store};
use serde_json::Value;

/// A timer to set: `kind` runs with `payload` at `due_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    pub payload: Value,
    pub due_at: i64,
}

/// A claimed job.
#[derive(Debug, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// Including this one.
    pub attempts: i64,
}

pub(super) async fn insert(tx: &mut impl Conn, job: &NewJob, now: i64) -> Result<()> {
    tx.run(
        Sql::fixed("INSERT INTO jobs (kind, payload, due_at, created_at) VALUES ($1, $2, $3, $4)")
            .arg(&job.kind)
            .arg(job.payload.to_string())
            .arg(job.due_at)
            .arg(now),
    )
    .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` jobs due at `now` until `until`, counting an
    /// attempt for each.
    pub async fn claim_jobs(&self, now: i64, until: i64, limit: i64) -> Result<Vec<Job>> {
        let sql = format!(
            "UPDATE jobs SET due_at = $1, attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs \
             WHERE status = 'pending' AND due_at <= $2 ORDER BY due_at LIMIT $3{}) \
             RETURNING id, kind, payload, attempts",
            self.backend.skip_locked()
        );
        Ok(sqlx::query_as(&sql).bind(until).bind(now).bind(limit).fetch_all(&self.pool).await?)
    }

    /// A job that failed: `pending` again (due when its lease ends) or
    /// `failed` for good.
    pub async fn job_failed(&self, id: i64, status: &str, error: &str) -> Result<()> {
        const SQL: &str = "UPDATE jobs SET status = $1, last_error = $2 WHERE id = $3";
        sqlx::query(SQL).bind(status).bind(error).bind(id).execute(&self.pool).await?;
        Ok(())
    }
}
