//! The single writer that gathers the commits of concurrent turns into one
//! transaction.
//!
//! Why: one autocommitted SQLite write costs ~140 µs, the same write inside a
//! shared transaction ~16 µs, and a row of a multi-row statement ~1 µs
//! (shared/notes/sqlite-write-costs.md). So turns queue their writes here;
//! the writer takes whatever has queued while the previous batch committed
//! (no artificial wait, so an idle system adds no latency) and commits it as
//! one transaction:
//!
//! 1. one `SELECT` finds inbound messages already processed (dedupe),
//! 2. one guarded statement per conversation (`INSERT … ON CONFLICT DO
//!    NOTHING` or `UPDATE … WHERE version = $expected`): zero rows affected
//!    means another turn won, and this one is retried on fresh state,
//! 3. one multi-row `INSERT` for the transcript rows of every turn that won,
//! 4. one multi-row `UPDATE` for delivery acknowledgements.
//!
//! A batch that fails as a whole (a bad row, a lost connection) is retried one
//! turn per transaction, so a poison turn fails alone.

use std::collections::HashSet;

use sqlx::{Connection, QueryBuilder};
use tokio::sync::{mpsc, oneshot};

use super::{ConversationRow, Db, Result, StoreError};

/// Most turns committed in one transaction.
const MAX_BATCH: usize = 512;
/// Rows per multi-row statement (SQLite allows 32766 bound values).
const ROWS_PER_STATEMENT: usize = 500;

/// Everything one turn writes, committed atomically.
#[derive(Debug, Clone)]
pub struct TurnCommit {
    pub conversation: ConversationWrite,
    /// The customer's message and the replies, in transcript order.
    pub messages: Vec<NewMessage>,
}

#[derive(Debug, Clone)]
pub enum ConversationWrite {
    /// A new conversation; fails if the key already has an open one.
    Insert(ConversationRow),
    /// The next state of a conversation, applied only if nobody else has
    /// changed it since `expected_version` was read.
    Update {
        row: ConversationRow,
        expected_version: i64,
    },
}

impl ConversationWrite {
    pub fn row(&self) -> &ConversationRow {
        match self {
            ConversationWrite::Insert(r) | ConversationWrite::Update { row: r, .. } => r,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub seq: i64,
    /// `"in"` or `"out"`.
    pub direction: &'static str,
    /// Inbound platform message id: a message seen before is not processed again.
    pub external_id: Option<String>,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// Another turn changed the conversation first; retry on fresh state.
    Conflict,
    /// The inbound message was already processed.
    Duplicate,
}

enum Job {
    Turn(Box<TurnCommit>, oneshot::Sender<Result<CommitOutcome>>),
    Ack {
        acks: Vec<(i64, i64)>,
        now_ms: i64,
        reply: oneshot::Sender<Result<()>>,
    },
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub(crate) async fn start(db: Db) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        tokio::spawn(run(db, rx));
        Ok(Writer { tx })
    }

    pub(crate) async fn commit(&self, turn: TurnCommit) -> Result<CommitOutcome> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Turn(Box::new(turn), reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// `ids` are `(conversation_id, seq)` of delivered outbound messages.
    pub(crate) async fn ack(&self, ids: Vec<(i64, i64)>, now_ms: i64) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Ack {
                acks: ids,
                now_ms,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    pub(crate) async fn flush(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Job::Flush(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        process(&db, std::mem::take(&mut jobs)).await;
    }
}

async fn process(db: &Db, jobs: Vec<Job>) {
    let mut turns = Vec::new();
    let mut turn_replies = Vec::new();
    let mut acks = Vec::new();
    let mut ack_replies = Vec::new();
    let mut flushes = Vec::new();
    let mut ack_time = 0;
    for job in jobs {
        match job {
            Job::Turn(t, r) => {
                turns.push(*t);
                turn_replies.push(r);
            }
            Job::Ack {
                acks: a,
                now_ms,
                reply,
            } => {
                acks.extend(a);
                ack_time = ack_time.max(now_ms);
                ack_replies.push(reply);
            }
            Job::Flush(r) => flushes.push(r),
        }
    }
    let result = apply(db, &turns, &acks, ack_time).await;
    match result {
        Ok(outcomes) => {
            for (reply, outcome) in turn_replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            for reply in ack_replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) if is_contention(&e) => {
            tracing::debug!(error = %e, "batch lost to a concurrent writer; turns will retry");
            for reply in turn_replies {
                let _ = reply.send(Ok(CommitOutcome::Conflict));
            }
            for reply in ack_replies {
                let _ = reply.send(Err(StoreError::Corrupt(
                    "acknowledgement lost to contention; resend".into(),
                )));
            }
        }
        Err(e) if turns.len() + usize::from(!acks.is_empty()) > 1 => {
            tracing::warn!(error = %e, turns = turns.len(), "batch failed; retrying one turn per transaction");
            for (turn, reply) in turns.iter().zip(turn_replies) {
                let one = apply(db, std::slice::from_ref(turn), &[], 0).await;
                let _ = reply.send(one.map(|mut o| o.pop().unwrap_or(CommitOutcome::Conflict)));
            }
            let acked = apply(db, &[], &acks, ack_time).await.map(|_| ());
            for reply in ack_replies {
                let _ = reply.send(
                    acked
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| StoreError::Corrupt(e.to_string())),
                );
            }
        }
        Err(e) => {
            let text = e.to_string();
            let mut err = Some(e);
            for reply in turn_replies {
                let _ = reply.send(Err(err
                    .take()
                    .unwrap_or_else(|| StoreError::Corrupt(text.clone()))));
            }
            for reply in ack_replies {
                let _ = reply.send(Err(err
                    .take()
                    .unwrap_or_else(|| StoreError::Corrupt(text.clone()))));
            }
        }
    }
    for f in flushes {
        let _ = f.send(());
    }
}

/// PostgreSQL deadlocks and serialization failures between instances: the
/// turns are simply retried.
fn is_contention(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(
                db.code().as_deref(),
                Some("40P01") | Some("40001") | Some("55P03")
            )
        }
        _ => false,
    }
}

async fn apply(
    db: &Db,
    turns: &[TurnCommit],
    acks: &[(i64, i64)],
    ack_time: i64,
) -> Result<Vec<CommitOutcome>> {
    match db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            apply_sqlite(&mut conn, turns, acks, ack_time).await
        }
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            apply_postgres(&mut conn, turns, acks, ack_time).await
        }
    }
}

/// The batch transaction, written once and expanded for each backend (the
/// SQL is the same; only the connection type differs).
macro_rules! apply_batch {
    ($fn_name:ident, $db:ty) => {
        async fn $fn_name(
            conn: &mut <$db as sqlx::Database>::Connection,
            turns: &[TurnCommit],
            acks: &[(i64, i64)],
            ack_time: i64,
        ) -> Result<Vec<CommitOutcome>> {
            let mut tx = conn.begin().await?;
            let mut outcomes = Vec::with_capacity(turns.len());

            // 1. Inbound messages already processed, by platform id.
            let mut seen: HashSet<(String, String)> = HashSet::new();
            let wanted: Vec<(&str, &str)> = turns
                .iter()
                .flat_map(|t| t.messages.iter().filter_map(move |m| m.external_id.as_deref().map(|id| (t.conversation.row().channel.as_str(), id))))
                .collect();
            for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new("SELECT channel, external_id FROM messages WHERE external_id IS NOT NULL AND (channel, external_id) IN (");
                let mut list = q.separated(", ");
                for (channel, id) in chunk {
                    list.push("(");
                    list.push_bind_unseparated(*channel);
                    list.push_unseparated(", ");
                    list.push_bind_unseparated(*id);
                    list.push_unseparated(")");
                }
                q.push(")");
                let rows: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *tx).await?;
                seen.extend(rows);
            }

            // 2. One guarded write per conversation.
            let mut won: Vec<&TurnCommit> = Vec::with_capacity(turns.len());
            for turn in turns {
                let row = turn.conversation.row();
                let dup = turn.messages.iter().filter_map(|m| m.external_id.as_ref()).any(|id| !seen.insert((row.channel.clone(), id.clone())));
                if dup {
                    outcomes.push(CommitOutcome::Duplicate);
                    continue;
                }
                let affected = match &turn.conversation {
                    ConversationWrite::Insert(r) => sqlx::query(
                        "INSERT INTO conversations (id, channel, conv_key, sender, verified, flow, flow_hash, journal, status, prompt, \
                         end_reason, next_seq, expires_at, wake_at, version, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT DO NOTHING",
                    )
                    .bind(r.id)
                    .bind(&r.channel)
                    .bind(&r.conv_key)
                    .bind(&r.sender)
                    .bind(&r.verified)
                    .bind(&r.flow)
                    .bind(&r.flow_hash)
                    .bind(&r.journal)
                    .bind(&r.status)
                    .bind(&r.prompt)
                    .bind(&r.end_reason)
                    .bind(r.next_seq)
                    .bind(r.expires_at)
                    .bind(r.wake_at)
                    .bind(r.version)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                    ConversationWrite::Update { row: r, expected_version } => sqlx::query(
                        "UPDATE conversations SET sender = $1, verified = $2, flow = $3, flow_hash = $4, journal = $5, status = $6, \
                         prompt = $7, end_reason = $8, next_seq = $9, expires_at = $10, wake_at = $11, version = $12, updated_at = $13 \
                         WHERE id = $14 AND version = $15",
                    )
                    .bind(&r.sender)
                    .bind(&r.verified)
                    .bind(&r.flow)
                    .bind(&r.flow_hash)
                    .bind(&r.journal)
                    .bind(&r.status)
                    .bind(&r.prompt)
                    .bind(&r.end_reason)
                    .bind(r.next_seq)
                    .bind(r.expires_at)
                    .bind(r.wake_at)
                    .bind(r.version)
                    .bind(r.updated_at)
                    .bind(r.id)
                    .bind(*expected_version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                };
                if affected == 1 {
                    outcomes.push(CommitOutcome::Committed);
                    won.push(turn);
                } else {
                    // Undo the dedupe claim so the retry is not taken for a duplicate.
                    for id in turn.messages.iter().filter_map(|m| m.external_id.as_ref()) {
                        seen.remove(&(row.channel.clone(), id.clone()));
                    }
                    outcomes.push(CommitOutcome::Conflict);
                }
            }

            // 3. The transcript rows of every turn that won, in one statement per chunk.
            let rows: Vec<(&ConversationRow, &NewMessage)> =
                won.iter().flat_map(|t| t.messages.iter().map(move |m| (t.conversation.row(), m))).collect();
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO messages (conversation_id, seq, direction, channel, external_id, body, created_at) ",
                );
                q.push_values(chunk, |mut b, (conv, m)| {
                    b.push_bind(conv.id)
                        .push_bind(m.seq)
                        .push_bind(m.direction)
                        .push_bind(conv.channel.as_str())
                        .push_bind(m.external_id.as_deref())
                        .push_bind(m.body.as_str())
                        .push_bind(m.created_at);
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }

            // 4. Delivery acknowledgements.
            for chunk in acks.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new("UPDATE messages SET delivered_at = ");
                q.push_bind(ack_time);
                q.push(" WHERE direction = 'out' AND delivered_at IS NULL AND (conversation_id, seq) IN (");
                let mut list = q.separated(", ");
                for (conv, seq) in chunk {
                    list.push("(");
                    list.push_bind_unseparated(*conv);
                    list.push_unseparated(", ");
                    list.push_bind_unseparated(*seq);
                    list.push_unseparated(")");
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }

            tx.commit().await?;
            Ok(outcomes)
        }
    };
}

apply_batch!(apply_sqlite, sqlx::Sqlite);
apply_batch!(apply_postgres, sqlx::Postgres);
