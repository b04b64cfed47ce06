//! SQLite's write-ahead log, copied into the database in the background
//! and kept from growing without bound.
//!
//! Commits only append to the log (`wal_autocheckpoint = 0`); a connection
//! of its own copies it into the database every [`CHECKPOINT_EVERY`], so no
//! commit pays for a checkpoint. But SQLite starts the log over only when a
//! write transaction begins with every frame copied, and a passive
//! checkpoint never catches up with a writer that commits back to back:
//! under steady load the file grew by ~150 MB/s (past 1 GB within a
//! benchmark), every commit paying the file system for new blocks. So once
//! the log is past [`WAL_LIMIT`], the writer itself, between two batches
//! (when no frame can be added), copies what is left, and its next
//! transaction starts the log over. It does so only just after a short,
//! complete background pass: a pass copies what was committed while the
//! one before it ran, so passes run back to back get shorter, and once one
//! takes under [`SHORT_PASS`], what is left for the writer is about as
//! little. The writer's checkpoint ends with an fsync of the database, and
//! every turn waits meanwhile. SQLite syncs the database only at the end of
//! a pass that copied the log up to its live end (`walCheckpoint` in SQLite
//! 3.46: the sync is under `mxSafeFrame == walIndexHdr(pWal)->mxFrame`),
//! which a background pass under steady commits seldom is; so every page
//! the passes had copied since the last start-over was still dirty, and the
//! writer's sync wrote them all back at random places: 5-26 ms a start-over,
//! most of what was left of the recovery bench's p99. So once the log is
//! past [`SYNC_FROM`] each background pass syncs the database itself after
//! copying ([`pass`]), and the writer's sync finds only the pages of its
//! own last few frames: 1.3-4.6 ms a start-over at 5,000 turns/s offered,
//! against 6.6-26.3 ms in the same hour without. The bench's p99 there
//! (2026-12-04, `frontdesk bench engine --workload recovery`): 7.1-21.0 ms,
//! ≤ 10 ms in 14 runs of 20, against 6.2-23.7 ms, ≤ 10 ms in 4 of 8,
//! without; saturation unchanged. What is left of the tail is the two
//! cores' scheduling (see the README's Performance section).
//! `RUST_LOG=frontdesk::store::wal=debug` logs each start-over, `=trace`
//! each pass with its copy's and its sync's time.
//! A log that full load kept from ever catching up is started over at
//! [`FILE_LIMIT`] after any fresh pass, at the cost of a longer stall.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sqlx::AnyPool;

use super::exec::SqliteConn;

/// How often the WAL is copied into the database. Each pass ends with
/// fsyncs of the log and of the database, and while the log's fsync is
/// writing back, the writer's appends to it wait for the pages they share
/// with it (`ext4_block_write_begin` in `perf sched timehist`): the longer
/// the interval, the more each pass has to write and the longer those
/// waits. `frontdesk bench engine --workload recovery`, p99 at 5,000
/// turns/s offered (2026-12-03, three runs each, saturation unchanged):
/// 250 ms 16.9-17.3 ms, 50 ms 8.3-10.0 ms.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// Past this size the writer starts the log over, and later frames
/// overwrite blocks the file already has.
/// At full load the log grows by ~140 MB/s: at 64 MiB
/// `bench engine --workload recovery` reached 13,000-14,200 turns/s, at
/// 256 MiB 15,900-17,700, at 1 GiB 17,000-17,300 (2026-12-02, three runs
/// each). 256 MiB is most of the gain for a quarter of the disk; 512 MiB
/// did not lower the p99 (8.8-9.9 ms against 8.3-10.0, 2026-12-03).
pub(super) const WAL_LIMIT: u64 = 256 << 20;

/// The connections' `journal_size_limit`: at a start-over SQLite cuts the
/// file back to this size, if it is bigger. Above [`WAL_LIMIT`], so that a
/// file the log filled only as far as it usually does is not cut (cutting
/// it took the next commit 3-4 ms, and the file grew back by the same
/// blocks), only one a log outgrew by far. Past it the writer does not
/// wait for a short pass (see [`Bound::keep`]).
pub(super) const FILE_LIMIT: u64 = 2 * WAL_LIMIT;

/// A background pass this short leaves the writer little to copy. At 3 ms
/// (with the writer finishing within 5 ms of it) the writer had 300-700
/// frames left to copy and stalled 12-18 ms.
const SHORT_PASS: Duration = Duration::from_millis(1);

/// Past this much log each pass syncs the database after copying ([`pass`]),
/// so that when the writer starts the log over at [`WAL_LIMIT`] the pages
/// copied since the last start-over are on disk. Not from the start: every
/// sync writes back each page the pass copied, and a page that commits
/// keep changing is then written once a pass instead of once a start-over.
/// Syncing after every pass looked to cost `bench email` about a tenth
/// (2026-12-04, seven runs each, in turn with the build before: end to end
/// median 7,311 mails/s, against 8,314); from half the limit on, 6,023-8,495
/// against 7,255-8,016 over four (a noisy hour: the IMAP fetch floor varied
/// 39,000-61,000). The writer's start-overs stayed short (1.3-4.6 ms at
/// 5,000 turns/s offered, against 6.6-26.3 before).
const SYNC_FROM: u64 = WAL_LIMIT / 2;

/// How recent a pass must be for the writer to finish after it.
const FRESH: Duration = Duration::from_millis(1);

/// What the background checkpoints and the writer share.
#[derive(Clone)]
pub(crate) struct Bound {
    /// How big the log was at the last background pass, in bytes of frames
    /// (not the file's size: after a start-over the file keeps its size
    /// and later frames overwrite it from the start).
    log_bytes: Arc<AtomicU64>,
    /// When the last short, complete pass ended, in microseconds since
    /// `epoch` (0: none since the writer last finished one).
    caught_up: Arc<AtomicU64>,
    /// When the last pass of any length ended, likewise.
    passed: Arc<AtomicU64>,
    epoch: Instant,
}

impl Bound {
    pub(crate) fn new() -> Bound {
        Bound {
            log_bytes: Arc::new(AtomicU64::new(0)),
            caught_up: Arc::new(AtomicU64::new(0)),
            passed: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        }
    }

    fn log_over(&self, limit: u64) -> bool {
        self.log_bytes.load(Ordering::Acquire) > limit
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Whether the pass that ended at `ended` (0: none) is fresh.
    fn fresh(&self, ended: u64) -> bool {
        ended != 0 && self.now().saturating_sub(ended) <= FRESH.as_micros() as u64
    }

    /// Called by the writer between batches: starts the log over when it is
    /// past [`WAL_LIMIT`] and a short, complete background pass has just
    /// ended, or past [`FILE_LIMIT`] and any pass has.
    pub(crate) fn keep(&self, conn: &SqliteConn) {
        let due = (self.log_over(WAL_LIMIT) && self.fresh(self.caught_up.load(Ordering::Acquire)))
            || (self.log_over(FILE_LIMIT) && self.fresh(self.passed.load(Ordering::Acquire)));
        if !due {
            return;
        }
        self.caught_up.store(0, Ordering::Release);
        self.passed.store(0, Ordering::Release);
        let started = Instant::now();
        let done = conn.checkpoint();
        tracing::debug!(?done, micros = started.elapsed().as_micros() as u64, "writer checkpoint (busy, log, copied)");
    }
}

/// What one background pass did.
struct Pass {
    /// `PRAGMA wal_checkpoint`'s answer: whether another checkpoint was
    /// running, frames in the log, frames copied into the database.
    busy: i64,
    log: i64,
    copied: i64,
    /// How long the copy took, without the sync after it.
    took: Duration,
}

/// One pass on `conn`: a PASSIVE checkpoint, then, if the log is past
/// [`SYNC_FROM`] (in frames of `frame_bytes`) and the pass copied frames it
/// had not copied before, a sync of the database, so that the pages it
/// wrote are on disk before the writer's start-over would otherwise have to
/// write them all back (see the module's doc). Not needed for durability:
/// SQLite syncs the database itself before it lets the log start over.
fn pass(conn: &SqliteConn, before: Option<(i64, i64)>, frame_bytes: u64) -> rusqlite::Result<Pass> {
    let started = Instant::now();
    let (busy, log, copied) = conn.checkpoint()?;
    let took = started.elapsed();
    let long = log.max(0) as u64 * frame_bytes > SYNC_FROM;
    if busy == 0 && long && copied > 0 && before != Some((log, copied)) {
        conn.sync_database()?;
    }
    tracing::trace!(
        busy,
        log,
        copied,
        micros = took.as_micros() as u64,
        sync_micros = (started.elapsed() - took).as_micros() as u64,
        "checkpoint"
    );
    Ok(Pass { busy, log, copied, took })
}

/// Copies the log into the database every [`CHECKPOINT_EVERY`], on a
/// connection of its own (`file`, opened with `pragmas`), and back to back
/// while the log is past [`WAL_LIMIT`] until a pass is short. PASSIVE: it
/// never waits for, nor blocks, the writer. A plain SQLite connection, not
/// one of `pool`'s, because the sync after each pass goes through SQLite's
/// handle of the file; it stops once `pool` is closed.
pub(crate) async fn checkpoints(file: PathBuf, pragmas: Arc<str>, pool: AnyPool, bound: Bound) {
    /// Most passes in a row before waiting for the next tick again.
    const MAX_RUN: usize = 8;
    let opened = tokio::task::spawn_blocking(move || {
        let conn = SqliteConn::open(&file, &pragmas)?;
        let page = conn.page_size()?;
        Ok::<_, rusqlite::Error>((conn, page))
    })
    .await;
    let (mut conn, page) = match opened.map_err(anyhow::Error::from).and_then(|r| Ok(r?)) {
        Ok(opened) => opened,
        Err(e) => return tracing::error!(error = %e, "opening the checkpoints' SQLite connection; the log will grow"),
    };
    // A frame is a page and its 24-byte header.
    let frame_bytes = page.max(0) as u64 + 24;
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut run = 0;
    let mut before = None;
    loop {
        if run == 0 {
            tick.tick().await;
        }
        if pool.is_closed() {
            return;
        }
        let done = tokio::task::spawn_blocking(move || {
            let done = pass(&conn, before, frame_bytes);
            (conn, done)
        })
        .await;
        let done = match done {
            Ok((back, done)) => {
                conn = back;
                done
            }
            Err(e) => return tracing::error!(error = %e, "a checkpoint pass panicked; checkpoints stop"),
        };
        match done {
            Ok(Pass { busy, log, copied, took }) => {
                before = Some((log, copied));
                bound.log_bytes.store(log.max(0) as u64 * frame_bytes, Ordering::Release);
                if busy == 0 {
                    let now = bound.now().max(1);
                    bound.passed.store(now, Ordering::Release);
                    // Complete, too: a pass that a reader's snapshot kept
                    // from copying is short, and leaves the writer all of it.
                    if copied == log && took < SHORT_PASS {
                        bound.caught_up.store(now, Ordering::Release);
                    }
                }
                let again = busy == 0 && took >= SHORT_PASS && bound.log_over(WAL_LIMIT);
                run = if again && run + 1 < MAX_RUN { run + 1 } else { 0 };
            }
            Err(e) => {
                run = 0;
                tracing::warn!(error = %e, "SQLite checkpoint failed; will retry");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{exec::SqliteConn, tests::received, Store, Write};

    /// The background passes copy what the writer commits into the database
    /// file itself: a copy of that file alone, without its log, holds the
    /// rows (nothing else checkpoints here: no `Store::checkpoint`, and the
    /// log stays far below the writer's start-over).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_passes_copy_the_log_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(dir.path()), 4).await.unwrap();
        let writes: Vec<Write> = (0..300).map(|i| received(format!("<{i}@example.com>"))).collect();
        store.record(&writes, 1).await.unwrap();
        let copy = dir.path().join("copy.db");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let rows = loop {
            std::fs::copy(dir.path().join("frontdesk.db"), &copy).unwrap();
            let conn = rusqlite::Connection::open(&copy).unwrap();
            let rows: i64 = conn
                .query_row("SELECT COUNT(*) FROM mail_received WHERE sender = 'a@example.com'", [], |r| r.get(0))
                .unwrap_or(0);
            drop(conn);
            if rows == 300 || std::time::Instant::now() > deadline {
                break rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(rows, 300, "the database file alone holds {rows} of the 300 rows");
        store.close().await;
    }

    /// The sync after a pass goes through SQLite's own handle of the file:
    /// it succeeds on a new, empty database file, and on one that has been
    /// checkpointed while another connection holds a write transaction,
    /// which then commits as usual.
    #[test]
    fn the_database_syncs_through_sqlites_handle() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let fresh = SqliteConn::open(&file, "").unwrap();
        fresh.sync_database().unwrap();
        let writer = rusqlite::Connection::open(&file).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        let syncing = SqliteConn::open(&file, "").unwrap();
        assert_eq!(syncing.checkpoint().unwrap().0, 0);
        writer.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2);").unwrap();
        syncing.sync_database().unwrap();
        writer.execute_batch("COMMIT;").unwrap();
        let rows: i64 = writer.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2);
    }
}
