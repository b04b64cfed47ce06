//! Writes that effects add to their turn: they commit in the same
//! transaction as the turn's journal, so a mail is queued, a token stored or
//! an audit entry written exactly when the step that caused it is recorded,
//! and never otherwise.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Who did what: every lookup, mail and account change.
    Audit { channel: String, actor: String, by_agent: Option<String>, action: String, subject: String, detail: Value },
    /// A mail for the outbox, rendered from `template` when it is sent.
    Mail { message_id: String, template: String, to: String, context: Value },
    /// A reset token (its hash); older unused tokens of the contact are revoked.
    RecoveryToken { token_hash: String, contact_id: i64, expires_at: i64 },
    /// A new company (status `active` or `pending_review`).
    Company(crate::directory::Company),
    /// A new contact of a company.
    Contact {
        org_id: String,
        username: String,
        first_name: String,
        last_name: String,
        email: String,
        phone: String,
        role: String,
    },
    /// A pending request to be added as a contact of a company.
    ContactRequest {
        number: String,
        org_id: String,
        first_name: String,
        last_name: String,
        email: String,
        phone: String,
        requester: String,
        token_hash: String,
    },
    /// A durable timer: `kind` runs with `payload` at `due_at`.
    Job { kind: String, payload: Value, due_at: i64 },
    /// An inbound mail was handled (answered, continued a conversation, or
    /// skipped with a reason); a mail recorded once is never handled again.
    MailReceived {
        message_key: String,
        source: String,
        sender: String,
        subject: String,
        outcome: String,
        reason: Option<String>,
    },
    /// An IMAP mailbox has been read up to `uid` (never moves back within one
    /// UIDVALIDITY; a new UIDVALIDITY replaces it).
    MailCheckpoint { mailbox: String, uidvalidity: i64, uid: i64 },
}

impl Write {
    /// An agent's action, in the audit log as done by that agent.
    pub fn agent_audit(channel: &str, agent: &str, action: &str, subject: &str, detail: Value) -> Write {
        Write::Audit {
            channel: channel.to_string(),
            actor: format!("agent:{agent}"),
            by_agent: Some(agent.to_string()),
            action: action.to_string(),
            subject: subject.to_string(),
            detail,
        }
    }
}

macro_rules! apply_writes {
    ($fn_name:ident, $db:ty) => {
        /// Applies the writes of the turns that won, grouped by kind.
        pub(crate) async fn $fn_name(
            tx: &mut <$db as sqlx::Database>::Connection,
            writes: &[(Option<i64>, &Write)],
            now: i64,
        ) -> Result<(), sqlx::Error> {
            let mut audits = Vec::new();
            let mut mails = Vec::new();
            let mut received = Vec::new();
            let mut checkpoints: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
            for (conversation, w) in writes {
                match w {
                    Write::Audit { .. } => audits.push((*conversation, w)),
                    Write::Mail { .. } => mails.push((*conversation, w)),
                    Write::Company(c) => {
                        sqlx::query(
                            "INSERT INTO companies (org_id, name, name_key, street, city, region, postal_code, country, phone, status, \
                             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        )
                        .bind(&c.org_id)
                        .bind(&c.name)
                        .bind(crate::directory::keys::name(&c.name))
                        .bind(&c.street)
                        .bind(&c.city)
                        .bind(&c.region)
                        .bind(&c.postal_code)
                        .bind(&c.country)
                        .bind(&c.phone)
                        .bind(&c.status)
                        .bind(now)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Write::Contact { org_id, username, first_name, last_name, email, phone, role } => {
                        use crate::directory::keys;
                        sqlx::query(
                            "INSERT INTO contacts (org_id, username, username_key, first_name, last_name, last_name_key, email, email_key, \
                             phone, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        )
                        .bind(org_id)
                        .bind(username)
                        .bind(keys::lower(username))
                        .bind(first_name)
                        .bind(last_name)
                        .bind(keys::name(last_name))
                        .bind(email)
                        .bind(keys::lower(email))
                        .bind(phone)
                        .bind(role)
                        .bind(now)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Write::ContactRequest { number, org_id, first_name, last_name, email, phone, requester, token_hash } => {
                        sqlx::query(
                            "INSERT INTO contact_requests (number, org_id, first_name, last_name, email, phone, requester, conversation_id, \
                             token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        )
                        .bind(number)
                        .bind(org_id)
                        .bind(first_name)
                        .bind(last_name)
                        .bind(email)
                        .bind(phone)
                        .bind(requester)
                        .bind(*conversation)
                        .bind(token_hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Write::Job { kind, payload, due_at } => {
                        sqlx::query("INSERT INTO jobs (kind, payload, due_at, created_at) VALUES ($1, $2, $3, $4)")
                            .bind(kind)
                            .bind(payload.to_string())
                            .bind(*due_at)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Write::MailReceived { .. } => received.push((*conversation, w)),
                    Write::MailCheckpoint { mailbox, uidvalidity, uid } => {
                        // Only the furthest point per mailbox matters; a new
                        // UIDVALIDITY (later in the batch) replaces the old.
                        match checkpoints.get_mut(mailbox.as_str()) {
                            Some((v, u)) if *v == *uidvalidity => *u = (*u).max(*uid),
                            _ => {
                                checkpoints.insert(mailbox.as_str(), (*uidvalidity, *uid));
                            }
                        }
                    }
                    Write::RecoveryToken { token_hash, contact_id, expires_at } => {
                        sqlx::query(
                            "UPDATE recovery_tokens SET revoked_at = $1 WHERE contact_id = $2 AND used_at IS NULL AND revoked_at IS NULL",
                        )
                        .bind(now)
                        .bind(*contact_id)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query("INSERT INTO recovery_tokens (token_hash, contact_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                            .bind(token_hash)
                            .bind(*contact_id)
                            .bind(now)
                            .bind(*expires_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            // The common kinds, many rows per statement: a turn's writes are
            // mostly these, and each statement is a round trip.
            for chunk in audits.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO audit_log (at, channel, actor, by_agent, action, subject, detail, conversation_id) ",
                );
                q.push_values(chunk, |mut b, (conversation, w)| {
                    let Write::Audit { channel, actor, by_agent, action, subject, detail } = w else { unreachable!() };
                    b.push_bind(now)
                        .push_bind(channel.as_str())
                        .push_bind(actor.as_str())
                        .push_bind(by_agent.as_deref())
                        .push_bind(action.as_str())
                        .push_bind(subject.as_str())
                        .push_bind(detail.to_string())
                        .push_bind(*conversation);
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in mails.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO outbox (message_id, conversation_id, template, to_addr, context, next_attempt_at, created_at) ",
                );
                q.push_values(chunk, |mut b, (conversation, w)| {
                    let Write::Mail { message_id, template, to, context } = w else { unreachable!() };
                    b.push_bind(message_id.as_str())
                        .push_bind(*conversation)
                        .push_bind(template.as_str())
                        .push_bind(to.as_str())
                        .push_bind(context.to_string())
                        .push_bind(now)
                        .push_bind(now);
                });
                q.push(" ON CONFLICT (message_id) DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }
            for chunk in received.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO mail_received (message_key, source, sender, subject, outcome, reason, conversation_id, received_at) ",
                );
                q.push_values(chunk, |mut b, (conversation, w)| {
                    let Write::MailReceived { message_key, source, sender, subject, outcome, reason } = w else {
                        unreachable!()
                    };
                    b.push_bind(message_key.as_str())
                        .push_bind(source.as_str())
                        .push_bind(sender.as_str())
                        .push_bind(subject.as_str())
                        .push_bind(outcome.as_str())
                        .push_bind(reason.as_deref())
                        .push_bind(*conversation)
                        .push_bind(now);
                });
                q.push(" ON CONFLICT (message_key) DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }
            for (mailbox, (uidvalidity, uid)) in checkpoints {
                sqlx::query(
                    "INSERT INTO mail_checkpoints (mailbox, uidvalidity, last_uid, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (mailbox) DO UPDATE SET last_uid = CASE WHEN mail_checkpoints.uidvalidity <> excluded.uidvalidity \
                     OR excluded.last_uid > mail_checkpoints.last_uid THEN excluded.last_uid ELSE mail_checkpoints.last_uid END, \
                     uidvalidity = excluded.uidvalidity, updated_at = excluded.updated_at",
                )
                .bind(mailbox)
                .bind(uidvalidity)
                .bind(uid)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        }
    };
}

/// Rows per multi-row INSERT (8 values each: well under both backends'
/// bind-parameter limits).
const ROWS_PER_INSERT: usize = 500;

apply_writes!(apply_sqlite, sqlx::Sqlite);
apply_writes!(apply_postgres, sqlx::Postgres);

/// Applies writes inside a transaction of either backend, for work outside
/// turns (follow-ups, decisions by command) that changes the same things.
pub(crate) trait ApplyWrites {
    async fn apply_writes(&mut self, writes: &[Write], now: i64) -> Result<(), sqlx::Error>;
}

impl ApplyWrites for sqlx::SqliteConnection {
    async fn apply_writes(&mut self, writes: &[Write], now: i64) -> Result<(), sqlx::Error> {
        let pairs: Vec<(Option<i64>, &Write)> = writes.iter().map(|w| (None, w)).collect();
        apply_sqlite(self, &pairs, now).await
    }
}

impl ApplyWrites for sqlx::PgConnection {
    async fn apply_writes(&mut self, writes: &[Write], now: i64) -> Result<(), sqlx::Error> {
        let pairs: Vec<(Option<i64>, &Write)> = writes.iter().map(|w| (None, w)).collect();
        apply_postgres(self, &pairs, now).await
    }
}
