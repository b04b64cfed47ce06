//! The outbox: mails queued by turns in the same transaction as the step that
//! caused them, claimed and marked by the worker in `mail::outbox`. Every
//! change to a claimed mail needs the claim's fencing token, so a worker
//! whose claim lapsed and went to another changes nothing.

use serde_json::Value;

use crate::domain::EmailAddress;

use super::{
    exec::Conn,
    sql::{pow2_chunks, Sql, ROWS_PER_STATEMENT},
    Result, Store,
};

/// A mail to queue, rendered from `template` with `context` when it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMail {
    pub message_id: String,
    pub template: String,
    pub to: EmailAddress,
    pub context: Value,
}

/// A claimed mail.
#[derive(Debug, sqlx::FromRow)]
pub struct QueuedMail {
    pub id: i64,
    pub message_id: String,
    pub template: String,
    pub to_addr: String,
    pub context: String,
    pub attempts: i64,
}

/// One outbox entry, for operators and tests.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Entry {
    pub to_addr: String,
    pub template: String,
    /// The template's values; emptied once the mail is sent or given up.
    pub context: String,
    pub status: String,
}

pub(super) async fn insert(tx: &mut impl Conn, mails: &[(Option<i64>, &NewMail)], now: i64) -> Result<()> {
    for chunk in pow2_chunks(mails, ROWS_PER_STATEMENT) {
        let mut q = Sql::new(tx,
            "INSERT INTO outbox (message_id, conversation_id, template, to_addr, context, next_attempt_at, created_at) \
             VALUES ",
        );
        q.rows(chunk, |v, (conversation, m)| {
            v.bind(m.message_id.as_str()).bind(*conversation).bind(m.template.as_str()).bind(m.to.as_str());
            v.bind(m.context.to_string()).bind(now).bind(now);
        });
        q.push(" ON CONFLICT (message_id) DO NOTHING");
        tx.run(q).await?;
    }
    Ok(())
}

impl Store {
    /// Mails in the outbox, whatever their status.
    pub async fn outbox_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox").fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Claims up to `limit` mails due at `now` under `token` until `until`,
    /// oldest first.
    pub async fn claim_mails(&self, now: i64, until: i64, token: &str, limit: i64) -> Result<Vec<QueuedMail>> {
        let sql = format!(
            "UPDATE outbox SET locked_until = $1, claim_token = $2 WHERE id IN (SELECT id FROM outbox \
             WHERE status = 'queued' AND next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until < $3) \
             ORDER BY id LIMIT $4{}) RETURNING id, message_id, template, to_addr, context, attempts",
            self.backend.skip_locked()
        );
        let mut rows: Vec<QueuedMail> =
            sqlx::query_as(&sql).bind(until).bind(token).bind(now).bind(limit).fetch_all(&self.pool).await?;
        // RETURNING gives no order.
        rows.sort_by_key(|m| m.id);
        Ok(rows)
    }

    /// Moves a mail's lease to `until` if `token` still holds its claim.
    pub async fn extend_mail_claim(&self, id: i64, token: &str, until: i64) -> Result<bool> {
        const SQL: &str =
            "UPDATE outbox SET locked_until = $1 WHERE id = $2 AND claim_token = $3 AND status = 'queued'";
        let done = sqlx::query(SQL).bind(until).bind(id).bind(token).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back every mail `token` still holds.
    pub async fn release_mail_claims(&self, token: &str) -> Result<()> {
        const SQL: &str =
            "UPDATE outbox SET locked_until = NULL, claim_token = NULL WHERE claim_token = $1 AND status = 'queued'";
        sqlx::query(SQL).bind(token).execute(&self.pool).await?;
        Ok(())
    }

    /// A claimed mail sent (`sent`) or given up (`failed`): its context,
    /// which held what the template needed (reset links included), goes.
    /// `false` if `token` no longer held the claim.
    pub async fn finish_mail(
        &self,
        id: i64,
        token: &str,
        status: &str,
        error: Option<&str>,
        now: i64,
        attempts: i64,
    ) -> Result<bool> {
        const SQL: &str =
            "UPDATE outbox SET status = $1, last_error = $2, sent_at = $3, attempts = $4, locked_until = NULL, \
             claim_token = NULL, context = '{}' WHERE id = $5 AND claim_token = $6";
        let sent_at = (status == "sent").then_some(now);
        let done = sqlx::query(SQL)
            .bind(status)
            .bind(error)
            .bind(sent_at)
            .bind(attempts)
            .bind(id)
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A claimed mail to try again at `at`. `false` if `token` no longer held
    /// the claim.
    pub async fn retry_mail(&self, id: i64, token: &str, error: &str, at: i64, attempts: i64) -> Result<bool> {
        const SQL: &str = "UPDATE outbox SET last_error = $1, next_attempt_at = $2, attempts = $3, \
                           locked_until = NULL, claim_token = NULL WHERE id = $4 AND claim_token = $5";
        let done =
            sqlx::query(SQL).bind(error).bind(at).bind(attempts).bind(id).bind(token).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every mail in the outbox, in the order queued.
    pub async fn outbox_entries(&self) -> Result<Vec<Entry>> {
        const SQL: &str = "SELECT to_addr, template, context, status FROM outbox ORDER BY id";
        Ok(sqlx::query_as(SQL).fetch_all(&self.pool).await?)
    }
}
