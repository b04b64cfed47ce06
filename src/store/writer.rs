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
//! 2. one multi-row guarded statement for new conversations (`INSERT …
//!    ON CONFLICT DO NOTHING RETURNING id`) and one for the others (`UPDATE
//!    … FROM (VALUES …) WHERE version = expected RETURNING id`): a turn whose
//!    id is not returned lost to another turn and is retried on fresh state.
//!    (A statement per turn would be a round trip per turn to PostgreSQL,
//!    and on SQLite a statement preparation and step each.)
//! 3. one multi-row `INSERT` for the transcript rows of every turn that won,
//! 4. one multi-row `UPDATE` for delivery acknowledgements.
//!
//! A batch that fails as a whole (a bad row, a lost connection) is retried one
//! turn per transaction, so a poison turn fails alone.

use std::time::Instant;

use sqlx::{AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::{
    exec::SqliteConn,
    quotas::{Take, Taken},
    Backend, ConversationRow, Result, StoreError,
};

/// Most turns committed in one transaction.
const MAX_BATCH: usize = 512;
/// Most tries of an acknowledgement whose batch lost to a concurrent writer.
const ACK_ATTEMPTS: usize = 5;
/// Everything one turn writes, committed atomically.
#[derive(Debug, Clone)]
pub struct TurnCommit {
    pub conversation: ConversationWrite,
    /// The customer's message and the replies, in transcript order.
    pub messages: Vec<NewMessage>,
    /// What the turn's effects wrote: mails, tokens, audit entries.
    pub writes: Vec<super::Write>,
}

#[derive(Debug, Clone)]
pub enum ConversationWrite {
    /// A new conversation; fails if the key already has an open one.
    Insert(ConversationRow),
    /// The next state of a conversation, applied only if nobody else has
    /// changed it since `expected_version` was read, when its status was
    /// `expected_status`. Its channel, key and sender are the ones it began
    /// with and are not written, nor is its status when it did not change:
    /// SQLite rewrites the entries of every index on a column an `UPDATE`
    /// sets, changed or not (and of every partial index whose condition
    /// reads one), and `conversations_by_sender` cost a random page per
    /// turn, `conversations_open` (partial on the status) another, with a
    /// probe of its uniqueness.
    Update { row: ConversationRow, expected_version: i64, expected_status: super::Status },
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
    pub direction: super::Direction,
    /// Inbound platform message id: a message seen before is not processed again.
    pub external_id: Option<String>,
    pub body: String,
    pub created_at: i64,
    /// Set when the channel delivered it as part of the turn (mail queued in
    /// the same transaction); otherwise the channel acknowledges it later.
    pub delivered_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// Another turn changed the conversation first; retry on fresh state.
    Conflict,
    /// The inbound message was already processed.
    Duplicate,
}

/// Where the writer writes.
pub(crate) enum Db {
    /// SQLite: the writer's own connection, used on the writer's thread only
    /// (see [`super::exec`] for why not sqlx's), and its log's bound.
    Sqlite(SqliteConn, super::wal::Bound),
    /// PostgreSQL: a pool of one connection of its own.
    Postgres(AnyPool),
}

enum Job {
    Turn(Box<TurnCommit>, oneshot::Sender<Result<CommitOutcome>>),
    Take(Box<Take>, oneshot::Sender<Result<Taken>>),
    Ack { acks: Vec<(i64, i64)>, now_ms: i64, reply: oneshot::Sender<Result<()>> },
    Flush(oneshot::Sender<()>),
}

/// A job and when it was queued.
type Queued = (Instant, Job);

#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Queued>,
}

impl Writer {
    pub(crate) async fn start(db: Db) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        match db {
            // The SQLite writer gets a thread of its own, where its batches
            // run as plain function calls into SQLite; on the shared runtime
            // each batch would block a worker that turns need.
            Db::Sqlite(..) => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                std::thread::Builder::new()
                    .name("frontdesk-writer".into())
                    .spawn(move || runtime.block_on(run(db, rx)))?;
            }
            // PostgreSQL sockets belong to the runtime that opened them.
            Db::Postgres(_) => {
                tokio::spawn(run(db, rx));
            }
        }
        Ok(Writer { tx })
    }

    pub(crate) async fn commit(&self, turn: TurnCommit) -> Result<CommitOutcome> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((Instant::now(), Job::Turn(Box::new(turn), reply))).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Takes quota uses in the next batch ([`super::quotas`]).
    pub(crate) async fn take(&self, take: Take) -> Result<Taken> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((Instant::now(), Job::Take(Box::new(take), reply))).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// `ids` are `(conversation_id, seq)` of delivered outbound messages.
    /// A batch that lost to another instance's writer (a PostgreSQL
    /// deadlock) is tried again: an acknowledgement changes nothing that a
    /// retry could double.
    pub(crate) async fn ack(&self, ids: Vec<(i64, i64)>, now_ms: i64) -> Result<()> {
        let mut attempt = 1;
        loop {
            let (reply, rx) = oneshot::channel();
            let job = Job::Ack { acks: ids.clone(), now_ms, reply };
            self.tx.send((Instant::now(), job)).await.map_err(|_| StoreError::WriterGone)?;
            match rx.await.map_err(|_| StoreError::WriterGone)? {
                Err(StoreError::Contention) if attempt < ACK_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    pub(crate) async fn flush(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send((Instant::now(), Job::Flush(reply))).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(mut db: Db, mut rx: mpsc::Receiver<Queued>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        process(&mut db, std::mem::take(&mut jobs)).await;
        if let Db::Sqlite(conn, wal) = &db {
            wal.keep(conn);
        }
    }
}

async fn process(db: &mut Db, jobs: Vec<Queued>) {
    let mut turns = Vec::new();
    let mut turn_replies = Vec::new();
    let mut takes = Vec::new();
    let mut take_replies = Vec::new();
    let mut acks = Vec::new();
    let mut ack_replies = Vec::new();
    let mut flushes = Vec::new();
    let mut ack_time = 0;
    let oldest = jobs.iter().map(|(at, _)| *at).min();
    for (_, job) in jobs {
        match job {
            Job::Turn(t, r) => {
                turns.push(*t);
                turn_replies.push(r);
            }
            Job::Take(t, r) => {
                takes.push(*t);
                take_replies.push(r);
            }
            Job::Ack { acks: a, now_ms, reply } => {
                acks.extend(a);
                ack_time = ack_time.max(now_ms);
                ack_replies.push(reply);
            }
            Job::Flush(r) => flushes.push(r),
        }
    }
    let started = Instant::now();
    let result = apply(db, &turns, &takes, &acks, ack_time).await;
    tracing::trace!(
        turns = turns.len(),
        takes = takes.len(),
        acks = acks.len(),
        micros = started.elapsed().as_micros() as u64,
        // How long the batch's oldest job waited for the writer.
        waited_micros = oldest.map_or(0, |at| started.duration_since(at).as_micros() as u64),
        "batch"
    );
    match result {
        Ok((outcomes, taken)) => {
            for (reply, outcome) in turn_replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            for (reply, taken) in take_replies.into_iter().zip(taken) {
                let _ = reply.send(Ok(taken));
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
            for reply in take_replies {
                let _ = reply.send(Err(StoreError::Contention));
            }
            for reply in ack_replies {
                let _ = reply.send(Err(StoreError::Contention));
            }
        }
        Err(e) if turns.len() + takes.len() + usize::from(!acks.is_empty()) > 1 => {
            tracing::warn!(error = %e, turns = turns.len(), "batch failed; retrying one job per transaction");
            for (turn, reply) in turns.iter().zip(turn_replies) {
                let one = apply(db, std::slice::from_ref(turn), &[], &[], 0).await;
                let _ = reply.send(one.map(|(mut o, _)| o.pop().unwrap_or(CommitOutcome::Conflict)));
            }
            for (take, reply) in takes.iter().zip(take_replies) {
                let one = apply(db, &[], std::slice::from_ref(take), &[], 0).await;
                let _ = reply.send(one.and_then(|(_, mut t)| t.pop().ok_or(StoreError::WriterGone)));
            }
            let acked = apply(db, &[], &[], &acks, ack_time).await.map_err(|e| e.to_string());
            for reply in ack_replies {
                let _ = reply.send(acked.as_ref().map(|_| ()).map_err(|e| StoreError::Batch(e.clone())));
            }
        }
        Err(e) => {
            // A single job: it gets the error itself.
            let text = e.to_string();
            let mut err = Some(e);
            let mut next = || err.take().unwrap_or_else(|| StoreError::Batch(text.clone()));
            for reply in turn_replies {
                let _ = reply.send(Err(next()));
            }
            for reply in take_replies {
                let _ = reply.send(Err(next()));
            }
            for reply in ack_replies {
                let _ = reply.send(Err(next()));
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
            matches!(db.code().as_deref(), Some("40P01") | Some("40001") | Some("55P03"))
        }
        _ => false,
    }
}

/// What a batch yields: each turn's outcome, each take's answer.
pub(super) type Applied = (Vec<CommitOutcome>, Vec<Taken>);

async fn apply(
    db: &mut Db,
    turns: &[TurnCommit],
    takes: &[Take],
    acks: &[(i64, i64)],
    ack_time: i64,
) -> Result<Applied> {
    match db {
        Db::Sqlite(conn, _) => {
            conn.begin(Backend::Sqlite.begin_batch())?;
            let done = super::batch::batch(conn, turns, takes, acks, ack_time).await;
            let done = conn.finish(done);
            tracing::trace!(pages = conn.pages_written(), "batch pages written");
            done
        }
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            let mut tx = conn.begin_with(Backend::Postgres.begin_batch()).await?;
            let applied = super::batch::batch(&mut *tx, turns, takes, acks, ack_time).await?;
            tx.commit().await?;
            Ok(applied)
        }
    }
}
