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
//!    (sqlx runs each SQLite statement on a worker thread, so a statement per
//!    turn would cost two thread switches per turn: most of the CPU.)
//! 3. one multi-row `INSERT` for the transcript rows of every turn that won,
//! 4. one multi-row `UPDATE` for delivery acknowledgements.
//!
//! A batch that fails as a whole (a bad row, a lost connection) is retried one
//! turn per transaction, so a poison turn fails alone.

use std::collections::{BTreeMap, HashSet};

use sqlx::{Connection, QueryBuilder};
use tokio::sync::{mpsc, oneshot};

use super::{
    quotas::{Take, Taken},
    ConversationRow, Db, Result, StoreError,
};

/// Most turns committed in one transaction.
const MAX_BATCH: usize = 512;
/// Most rows per multi-row statement (SQLite allows 32766 bound values; a
/// conversation row binds 17).
const ROWS_PER_STATEMENT: usize = 256;
/// Most terms of one OR chain (SQLite's parser limits expression depth to 1000).
const ACK_RANGES_PER_STATEMENT: usize = 128;

/// Splits `items` into chunks whose sizes are powers of two (300 rows:
/// 256 + 32 + 8 + 4). Statements of a few fixed shapes stay in sqlx's
/// prepared-statement cache; a fresh shape per batch would be parsed again
/// every time, which on small batches costs more than the writes.
fn pow2_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(max.is_power_of_two());
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = (1usize << (usize::BITS - 1 - rest.len().leading_zeros())).min(max);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// `(conversation, seq)` pairs as `(conversation, first seq, last seq)`
/// ranges of consecutive seqs.
fn ack_ranges(acks: &[(i64, i64)]) -> Vec<(i64, i64, i64)> {
    let mut sorted = acks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(i64, i64, i64)> = Vec::new();
    for (conv, seq) in sorted {
        match ranges.last_mut() {
            Some((c, _, hi)) if *c == conv && *hi + 1 == seq => *hi = seq,
            _ => ranges.push((conv, seq, seq)),
        }
    }
    ranges
}

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
    /// changed it since `expected_version` was read.
    Update { row: ConversationRow, expected_version: i64 },
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

enum Job {
    Turn(Box<TurnCommit>, oneshot::Sender<Result<CommitOutcome>>),
    Take(Box<Take>, oneshot::Sender<Result<Taken>>),
    Ack { acks: Vec<(i64, i64)>, now_ms: i64, reply: oneshot::Sender<Result<()>> },
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub(crate) async fn start(db: Db) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        match db {
            // The SQLite writer gets a thread of its own: it makes several
            // round trips to sqlx's connection thread per batch, and on the
            // shared runtime it would queue behind every ready turn after
            // each one. (SQLite connections are thread-based, so any runtime
            // can drive them.)
            Db::Sqlite(_) => {
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
        self.tx.send(Job::Turn(Box::new(turn), reply)).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Takes quota uses in the next batch ([`super::quotas`]).
    pub(crate) async fn take(&self, take: Take) -> Result<Taken> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job::Take(Box::new(take), reply)).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// `ids` are `(conversation_id, seq)` of delivered outbound messages.
    pub(crate) async fn ack(&self, ids: Vec<(i64, i64)>, now_ms: i64) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job::Ack { acks: ids, now_ms, reply }).await.map_err(|_| StoreError::WriterGone)?;
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
    let mut takes = Vec::new();
    let mut take_replies = Vec::new();
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
    let started = std::time::Instant::now();
    let result = apply(db, &turns, &takes, &acks, ack_time).await;
    tracing::trace!(
        turns = turns.len(),
        takes = takes.len(),
        acks = acks.len(),
        micros = started.elapsed().as_micros() as u64,
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
type Applied = (Vec<CommitOutcome>, Vec<Taken>);

async fn apply(db: &Db, turns: &[TurnCommit], takes: &[Take], acks: &[(i64, i64)], ack_time: i64) -> Result<Applied> {
    match db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            apply_sqlite(&mut conn, turns, takes, acks, ack_time).await
        }
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            apply_postgres(&mut conn, turns, takes, acks, ack_time).await
        }
    }
}

/// The batch transaction, written once and expanded for each backend (the
/// SQL is the same; only the connection type differs).
macro_rules! apply_batch {
    ($fn_name:ident, $db:ty, $apply_writes:ident, $begin:literal, $advisory_locks:literal) => {
        async fn $fn_name(
            conn: &mut <$db as sqlx::Database>::Connection,
            turns: &[TurnCommit],
            takes: &[Take],
            acks: &[(i64, i64)],
            ack_time: i64,
        ) -> Result<Applied> {
            let mut tx = conn.begin_with($begin).await?;

            // 0. Quota takes, first and in order: SQLite's write lock (taken
            //    by BEGIN IMMEDIATE) serialises them against every other
            //    writer; on PostgreSQL an advisory lock per quota does, across
            //    instances.
            if $advisory_locks {
                for key in Take::keys(takes) {
                    sqlx::query(super::quotas::LOCK_SQL).bind(key).execute(&mut *tx).await?;
                }
            }
            let taken = super::quotas::take_batch::<$db>(&mut *tx, takes).await?;

            // 1. Inbound messages already processed, by platform id: one
            //    `channel = $1 AND external_id IN (...)` per channel, which
            //    both backends answer from the unique index.
            let mut seen: HashSet<(String, String)> = HashSet::new();
            let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for t in turns {
                for id in t.messages.iter().filter_map(|m| m.external_id.as_deref()) {
                    wanted.entry(t.conversation.row().channel.as_str()).or_default().push(id);
                }
            }
            for (channel, ids) in &wanted {
                for chunk in pow2_chunks(ids, ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::<$db>::new("SELECT channel, external_id FROM messages WHERE channel = ");
                    q.push_bind(*channel);
                    q.push(" AND external_id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    let rows: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *tx).await?;
                    seen.extend(rows);
                }
            }

            // 2. The guarded conversation writes, as multi-row statements
            //    whose RETURNING lists the turns that won. A conversation
            //    appears at most once per round, so that each winner is
            //    known; a second turn for it goes to the next round, where
            //    its version no longer matches.
            let mut outcome: Vec<Option<CommitOutcome>> = vec![None; turns.len()];
            let mut pending: Vec<usize> = Vec::with_capacity(turns.len());
            for (i, turn) in turns.iter().enumerate() {
                let channel = &turn.conversation.row().channel;
                let mut dup = false;
                for id in turn.messages.iter().filter_map(|m| m.external_id.as_ref()) {
                    dup |= !seen.insert((channel.clone(), id.clone()));
                }
                if dup {
                    outcome[i] = Some(CommitOutcome::Duplicate);
                } else {
                    pending.push(i);
                }
            }
            while !pending.is_empty() {
                let mut ids = HashSet::new();
                let (round, later): (Vec<usize>, Vec<usize>) = pending.iter().partition(|&&i| ids.insert(turns[i].conversation.row().id));
                let inserts: Vec<&ConversationRow> = round.iter().filter_map(|&i| match &turns[i].conversation {
                    ConversationWrite::Insert(r) => Some(r),
                    _ => None,
                }).collect();
                let updates: Vec<(&ConversationRow, i64)> = round.iter().filter_map(|&i| match &turns[i].conversation {
                    ConversationWrite::Update { row, expected_version } => Some((row, *expected_version)),
                    _ => None,
                }).collect();
                let mut won: HashSet<i64> = HashSet::new();
                for chunk in pow2_chunks(&inserts, ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO conversations (id, channel, conv_key, sender, verified, flow, flow_hash, journal, status, prompt, \
                         end_reason, next_seq, expires_at, wake_at, version, created_at, updated_at, started_by) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id).push_bind(&r.channel).push_bind(&r.conv_key).push_bind(&r.sender).push_bind(&r.verified)
                            .push_bind(&r.flow).push_bind(&r.flow_hash).push_bind(&r.journal).push_bind(&r.status).push_bind(&r.prompt)
                            .push_bind(&r.end_reason).push_bind(r.next_seq).push_bind(r.expires_at).push_bind(r.wake_at)
                            .push_bind(r.version).push_bind(r.created_at).push_bind(r.updated_at).push_bind(&r.started_by);
                    });
                    q.push(" ON CONFLICT DO NOTHING RETURNING id");
                    let rows: Vec<(i64,)> = q.build_query_as().fetch_all(&mut *tx).await?;
                    won.extend(rows.into_iter().map(|(id,)| id));
                }
                for chunk in pow2_chunks(&updates, ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::<$db>::new(
                        "UPDATE conversations SET sender = v.column3, verified = v.column4, flow = v.column5, flow_hash = v.column6, \
                         journal = v.column7, status = v.column8, prompt = v.column9, end_reason = v.column10, next_seq = v.column11, \
                         expires_at = v.column12, wake_at = v.column13, version = v.column14, updated_at = v.column15, \
                         started_by = v.column16 FROM (",
                    );
                    q.push_values(chunk, |mut b, (r, expected)| {
                        b.push_bind(r.id).push_bind(*expected).push_bind(&r.sender).push_bind(&r.verified).push_bind(&r.flow)
                            .push_bind(&r.flow_hash).push_bind(&r.journal).push_bind(&r.status).push_bind(&r.prompt)
                            .push_bind(&r.end_reason).push_bind(r.next_seq).push_bind(r.expires_at).push_bind(r.wake_at)
                            .push_bind(r.version).push_bind(r.updated_at).push_bind(&r.started_by);
                    });
                    q.push(") AS v WHERE conversations.id = v.column1 AND conversations.version = v.column2 RETURNING conversations.id");
                    let rows: Vec<(i64,)> = q.build_query_as().fetch_all(&mut *tx).await?;
                    won.extend(rows.into_iter().map(|(id,)| id));
                }
                for &i in &round {
                    let row = turns[i].conversation.row();
                    if won.contains(&row.id) {
                        outcome[i] = Some(CommitOutcome::Committed);
                    } else {
                        // Undo the dedupe claim so the retry is not taken for a duplicate.
                        for id in turns[i].messages.iter().filter_map(|m| m.external_id.as_ref()) {
                            seen.remove(&(row.channel.clone(), id.clone()));
                        }
                        outcome[i] = Some(CommitOutcome::Conflict);
                    }
                }
                pending = later;
            }
            let outcomes: Vec<CommitOutcome> = outcome.into_iter().map(|o| o.expect("every turn has an outcome")).collect();
            let won: Vec<&TurnCommit> = turns.iter().zip(&outcomes).filter(|(_, o)| **o == CommitOutcome::Committed).map(|(t, _)| t).collect();

            // 3. The transcript rows of every turn that won, in one statement per chunk.
            let rows: Vec<(&ConversationRow, &NewMessage)> =
                won.iter().flat_map(|t| t.messages.iter().map(move |m| (t.conversation.row(), m))).collect();
            for chunk in pow2_chunks(&rows, ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO messages (conversation_id, seq, direction, channel, external_id, body, created_at, delivered_at) ",
                );
                q.push_values(chunk, |mut b, (conv, m)| {
                    b.push_bind(conv.id)
                        .push_bind(m.seq)
                        .push_bind(m.direction)
                        .push_bind(conv.channel.as_str())
                        .push_bind(m.external_id.as_deref())
                        .push_bind(m.body.as_str())
                        .push_bind(m.created_at)
                        .push_bind(m.delivered_at);
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }

            // 3b. The effects' writes of every turn that won.
            let writes: Vec<(Option<i64>, &super::Write)> =
                won.iter().flat_map(|t| t.writes.iter().map(move |w| (Some(t.conversation.row().id), w))).collect();
            if !writes.is_empty() {
                let now = won.iter().map(|t| t.conversation.row().updated_at).max().unwrap_or(0);
                super::writes::$apply_writes(&mut *tx, &writes, now).await?;
            }

            // 4. Delivery acknowledgements, as seq ranges per conversation
            //    in OR chains that both backends answer from the
            //    (conversation_id, seq) index.
            for chunk in pow2_chunks(&ack_ranges(acks), ACK_RANGES_PER_STATEMENT) {
                let mut q = QueryBuilder::<$db>::new("UPDATE messages SET delivered_at = ");
                q.push_bind(ack_time);
                q.push(" WHERE direction = 'out' AND delivered_at IS NULL AND (");
                for (i, (conv, lo, hi)) in chunk.iter().enumerate() {
                    q.push(if i == 0 { "(conversation_id = " } else { " OR (conversation_id = " });
                    q.push_bind(*conv);
                    q.push(" AND seq BETWEEN ");
                    q.push_bind(*lo);
                    q.push(" AND ");
                    q.push_bind(*hi);
                    q.push(")");
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }

            tx.commit().await?;
            Ok((outcomes, taken))
        }
    };
}

// On SQLite the batch reads before it writes; a deferred transaction would
// fail with SQLITE_BUSY_SNAPSHOT (which no busy timeout waits out) whenever
// another connection wrote in between, so it takes the write lock up front.
apply_batch!(apply_sqlite, sqlx::Sqlite, apply_sqlite, "BEGIN IMMEDIATE", false);
apply_batch!(apply_postgres, sqlx::Postgres, apply_postgres, "BEGIN", true);

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_have_power_of_two_sizes() {
        let items: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = super::pow2_chunks(&items, 256).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![256, 32, 8, 4]);
        let sizes: Vec<usize> = super::pow2_chunks(&items[..7], 4).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![4, 2, 1]);
        assert_eq!(super::pow2_chunks(&items[..0], 4).count(), 0);
    }

    #[test]
    fn acks_collapse_into_ranges() {
        assert_eq!(
            super::ack_ranges(&[(2, 5), (1, 3), (1, 1), (1, 2), (2, 7), (1, 2)]),
            vec![(1, 1, 3), (2, 5, 5), (2, 7, 7)]
        );
    }
}
