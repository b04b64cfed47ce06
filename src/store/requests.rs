//! Requests and tokens of the account procedures: contact requests waiting
//! for an administrator's decision, and reset tokens (hashes only).

use super::{
    exec::Conn,
    read::{parsed, records, FieldError, Fields, Record},
    rows::optional_phone,
    sql::{pow2_chunks, Sql, ROWS_PER_STATEMENT},
    writes, Result, Store, Write,
};
use crate::domain::{EmailAddress, OrgId, Phone};

/// A request to be added as a contact of a company, pending until decided.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContactRequest {
    pub number: String,
    pub org_id: OrgId,
    pub first_name: String,
    pub last_name: String,
    pub email: EmailAddress,
    pub phone: Option<Phone>,
    pub requester: String,
    pub token_hash: String,
}

/// A reset token, by its hash; older unused tokens of the contact are revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecoveryToken {
    pub token_hash: String,
    pub contact_id: i64,
    pub expires_at: i64,
}

/// A pending request, as a decision needs it.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    pub id: i64,
    pub number: String,
    pub org_id: OrgId,
    pub first_name: String,
    pub last_name: String,
    pub email: EmailAddress,
    pub phone: Option<Phone>,
}

impl Record for OpenRequest {
    fn read(row: &impl Fields) -> std::result::Result<OpenRequest, FieldError> {
        Ok(OpenRequest {
            id: row.field("id")?,
            number: row.field("number")?,
            org_id: parsed(row, "org_id")?,
            first_name: row.field("first_name")?,
            last_name: row.field("last_name")?,
            email: parsed(row, "email")?,
            phone: optional_phone(row, "phone")?,
        })
    }
}

records!(OpenRequest);

/// A request still waiting for a decision, for operators.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PendingRequest {
    pub number: String,
    #[sqlx(try_from = "String")]
    pub org_id: OrgId,
    pub first_name: String,
    pub last_name: String,
    #[sqlx(try_from = "String")]
    pub email: EmailAddress,
    pub created_at: i64,
}

/// How a decision names its request.
pub enum RequestRef<'a> {
    /// The hash of the token in the administrator's link.
    TokenHash(&'a str),
    /// The request number an agent typed.
    Number(&'a str),
}

pub(super) async fn insert_request(
    tx: &mut impl Conn,
    r: &NewContactRequest,
    conversation: Option<i64>,
    now: i64,
) -> Result<()> {
    tx.run(
        Sql::fixed(
            "INSERT INTO contact_requests (number, org_id, first_name, last_name, email, phone, requester, \
         conversation_id, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .arg(&r.number)
        .arg(r.org_id.as_str())
        .arg(&r.first_name)
        .arg(&r.last_name)
        .arg(r.email.as_str())
        .arg(r.phone.as_deref().unwrap_or_default())
        .arg(&r.requester)
        .arg(conversation)
        .arg(&r.token_hash)
        .arg(now),
    )
    .await?;
    Ok(())
}

/// Reset tokens (their hashes), each revoking the unused tokens of its
/// contact: one `UPDATE` for every contact of the batch and one multi-row
/// `INSERT`, where a statement pair per token was two round trips each to
/// PostgreSQL. Of several tokens for one contact in one batch, all but the
/// last go in revoked, as if each had been written in turn.
pub(super) async fn insert_tokens(tx: &mut impl Conn, tokens: &[&NewRecoveryToken], now: i64) -> Result<()> {
    use std::collections::HashMap;
    if tokens.is_empty() {
        return Ok(());
    }
    let last: HashMap<i64, usize> = tokens.iter().enumerate().map(|(i, t)| (t.contact_id, i)).collect();
    let contacts: Vec<i64> = last.keys().copied().collect();
    for chunk in pow2_chunks(&contacts, ROWS_PER_STATEMENT) {
        let mut q = Sql::new(tx, "UPDATE recovery_tokens SET revoked_at = ");
        q.bind(now).push(" WHERE used_at IS NULL AND revoked_at IS NULL AND contact_id IN (");
        q.list(chunk.iter().copied()).push(")");
        tx.run(q).await?;
    }
    let rows: Vec<(usize, &&NewRecoveryToken)> = tokens.iter().enumerate().collect();
    for chunk in pow2_chunks(&rows, ROWS_PER_STATEMENT) {
        let mut q = Sql::new(
            tx,
            "INSERT INTO recovery_tokens (token_hash, contact_id, created_at, expires_at, revoked_at) VALUES ",
        );
        q.rows(chunk, |v, (i, t)| {
            let revoked = (last[&t.contact_id] != *i).then_some(now);
            v.bind(t.token_hash.as_str()).bind(t.contact_id).bind(now).bind(t.expires_at).bind(revoked);
        });
        tx.run(q).await?;
    }
    Ok(())
}

impl Store {
    /// The pending request a decision names, if made after `made_after`.
    pub async fn open_request(&self, by: RequestRef<'_>, made_after: i64) -> Result<Option<OpenRequest>> {
        const COLUMNS: &str = "id, number, org_id, first_name, last_name, email, phone";
        let (column, key) = match by {
            RequestRef::TokenHash(h) => ("token_hash", h),
            RequestRef::Number(n) => ("number", n),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM contact_requests WHERE {column} = $1 AND status = 'pending' AND created_at > $2"
        );
        Ok(sqlx::query_as(&sql).bind(key).bind(made_after).fetch_optional(&self.pool).await?)
    }

    /// Ends a request still pending with `status` (`approved`, `declined`,
    /// `expired`) and applies `writes` in the same transaction, exactly once:
    /// `false`, and nothing written, if it was no longer pending.
    pub async fn close_request(
        &self,
        id: i64,
        status: &str,
        decided_by: &str,
        writes: &[Write],
        now: i64,
    ) -> Result<bool> {
        const SQL: &str = "UPDATE contact_requests SET status = $1, decided_by = $2, decided_at = $3 \
                           WHERE id = $4 AND status = 'pending'";
        let guard = sqlx::query(SQL).bind(status).bind(decided_by).bind(now).bind(id);
        let (tx, changed) = writes::guarded(&self.pool, guard, writes, now).await?;
        if changed {
            tx.commit().await?;
        }
        Ok(changed)
    }

    /// Redeems a reset token, once: marks it used if it is unused, not
    /// revoked, not expired and its contact still active, and applies the
    /// write `audit` makes of that contact, in one transaction. `None`, and
    /// nothing written, for any other token. Concurrent redemptions (here
    /// or on another instance) of one token: one gets the contact.
    pub async fn redeem_recovery_token(
        &self,
        token_hash: &str,
        now: i64,
        audit: impl FnOnce(&crate::store::directory::Contact) -> Write,
    ) -> Result<Option<crate::store::directory::Contact>> {
        use sqlx::Connection as _;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with(self.backend.begin_batch()).await?;
        const USE: &str = "UPDATE recovery_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
                           AND revoked_at IS NULL AND expires_at > $1";
        if tx.run(Sql::fixed(USE).arg(now).arg(token_hash)).await? != 1 {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {} FROM contacts WHERE status = 'active' AND id = \
             (SELECT contact_id FROM recovery_tokens WHERE token_hash = $1)",
            super::directory::CONTACT_COLUMNS
        );
        let contact: Option<crate::store::directory::Contact> =
            sqlx::query_as(&sql).bind(token_hash).fetch_optional(&mut *tx).await?;
        let Some(contact) = contact else { return Ok(None) };
        writes::apply(&mut *tx, &writes::alone(&[audit(&contact)]), now).await?;
        tx.commit().await?;
        Ok(Some(contact))
    }

    /// Every pending request, oldest first.
    pub async fn pending_requests(&self) -> Result<Vec<PendingRequest>> {
        const SQL: &str = "SELECT number, org_id, first_name, last_name, email, created_at FROM contact_requests \
                           WHERE status = 'pending' ORDER BY created_at, id";
        Ok(sqlx::query_as(SQL).fetch_all(&self.pool).await?)
    }

    /// Up to `limit` pending requests made at or before `made_by`, oldest first.
    pub async fn requests_made_by(&self, made_by: i64, limit: i64) -> Result<Vec<OpenRequest>> {
        const SQL: &str = "SELECT id, number, org_id, first_name, last_name, email, phone FROM contact_requests \
                           WHERE status = 'pending' AND created_at <= $1 ORDER BY created_at LIMIT $2";
        Ok(sqlx::query_as(SQL).bind(made_by).bind(limit).fetch_all(&self.pool).await?)
    }
}
