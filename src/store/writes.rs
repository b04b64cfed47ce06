//! Writes that effects add to their turn: they commit in the same
//! transaction as the turn's journal, so a mail is queued, a token stored or
//! an audit entry written exactly when the step that caused it is recorded,
//! and never otherwise. Each kind belongs to its domain's module, which
//! owns its SQL; this module only routes them.

use super::{
    audit::Audit,
    directory::{Company, NewContact},
    exec::Conn,
    jobs::NewJob,
    mail::{MailCheckpoint, MailReceived},
    outbox::NewMail,
    requests::{NewContactRequest, NewRecoveryToken},
    Result,
};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Who did what: every lookup, mail and account change.
    Audit(Audit),
    /// A mail for the outbox, rendered from its template when it is sent.
    Mail(NewMail),
    /// A reset token (its hash); older unused tokens of the contact are revoked.
    RecoveryToken(NewRecoveryToken),
    /// A new company (status `active` or `pending_review`).
    Company(Company),
    /// A new contact of a company.
    Contact(NewContact),
    /// A pending request to be added as a contact of a company.
    ContactRequest(NewContactRequest),
    /// A durable timer.
    Job(NewJob),
    /// An inbound mail was handled.
    MailReceived(MailReceived),
    /// An IMAP mailbox has been read up to a UID.
    MailCheckpoint(MailCheckpoint),
}

impl Write {
    /// An agent's action, in the audit log as done by that agent.
    pub fn agent_audit(channel: &str, agent: &str, action: &str, subject: &str, detail: Value) -> Write {
        Write::Audit(Audit {
            channel: channel.to_string(),
            actor: format!("agent:{agent}"),
            by_agent: Some(agent.to_string()),
            action: action.to_string(),
            subject: subject.to_string(),
            detail,
        })
    }
}

/// A state change guarded by its `UPDATE … WHERE <still in the old state>`,
/// and the writes it causes, in one transaction: the writes go in only if
/// the guard changed exactly one row, so two deciders racing (two clicks,
/// two instances) change it once. The transaction comes back for the caller
/// to add to and commit.
pub(super) async fn guarded<'w>(
    pool: &sqlx::AnyPool,
    guard: sqlx::query::Query<'w, sqlx::Any, sqlx::any::AnyArguments<'w>>,
    writes: &[Write],
    now: i64,
) -> Result<(sqlx::Transaction<'static, sqlx::Any>, bool)> {
    let mut tx = pool.begin().await?;
    let changed = guard.execute(&mut *tx).await?.rows_affected() == 1;
    if changed {
        apply(&mut *tx, &alone(writes), now).await?;
    }
    Ok((tx, changed))
}

/// Writes done outside a turn: no conversation caused them.
pub(super) fn alone(writes: &[Write]) -> Vec<(Option<i64>, &Write)> {
    writes.iter().map(|w| (None, w)).collect()
}

/// Applies writes, each with the conversation that caused it (if any),
/// grouped by kind so the common ones go many rows per statement.
pub(super) async fn apply(tx: &mut impl Conn, writes: &[(Option<i64>, &Write)], now: i64) -> Result<()> {
    let (mut audits, mut mails, mut received, mut checkpoints, mut tokens) = (vec![], vec![], vec![], vec![], vec![]);
    for &(conversation, w) in writes {
        match w {
            Write::Audit(a) => audits.push((conversation, a)),
            Write::Mail(m) => mails.push((conversation, m)),
            Write::MailReceived(m) => received.push((conversation, m)),
            Write::MailCheckpoint(c) => checkpoints.push(c),
            Write::Company(c) => super::directory::insert_company(tx, c, now).await?,
            Write::Contact(c) => super::directory::insert_contact(tx, c, now).await?,
            Write::ContactRequest(r) => super::requests::insert_request(tx, r, conversation, now).await?,
            Write::RecoveryToken(t) => tokens.push(t),
            Write::Job(j) => super::jobs::insert(tx, j, now).await?,
        }
    }
    super::requests::insert_tokens(tx, &tokens, now).await?;
    super::audit::insert(tx, &audits, now).await?;
    super::outbox::insert(tx, &mails, now).await?;
    super::mail::insert_received(tx, &received, now).await?;
    super::mail::save_checkpoints(tx, &checkpoints, now).await?;
    Ok(())
}
