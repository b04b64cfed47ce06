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
//! little. The writer's checkpoint ends with an fsync of the database,
//! pages at random places (~30 µs a page on this machine's disk), and
//! every turn waits meanwhile: the start-overs, 14-22 ms each even right
//! after a sub-millisecond pass, are most of what is left of the recovery
//! bench's p99. Why that many pages are dirty then: SQLite syncs the
//! database only at the end of a pass that copied the log up to its live
//! end (`walCheckpoint` in SQLite 3.46: the sync is under `mxSafeFrame ==
//! walIndexHdr(pWal)->mxFrame`), which a background pass under steady
//! commits seldom is, so the pages the passes copied since are still dirty
//! and the writer's sync writes them back (read from the source, not yet
//! counted).
//! A log that full load kept from ever catching up is started over at
//! [`FILE_LIMIT`] after any fresh pass, at the cost of a longer stall.

use std::{
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

/// Copies the log into the database every [`CHECKPOINT_EVERY`], on a
/// connection of its own, and back to back while the log is past
/// [`WAL_LIMIT`] until a pass is short. PASSIVE: it never waits for, nor
/// blocks, the writer.
pub(crate) async fn checkpoints(pool: AnyPool, bound: Bound) {
    /// Most passes in a row before waiting for the next tick again.
    const MAX_RUN: usize = 8;
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut run = 0;
    // A frame is a page and its 24-byte header.
    let frame_bytes = match sqlx::query_as::<_, (i64,)>("PRAGMA page_size").fetch_one(&pool).await {
        Ok((page,)) => page.max(0) as u64 + 24,
        Err(_) => 4096 + 24,
    };
    loop {
        if run == 0 {
            tick.tick().await;
        }
        if pool.is_closed() {
            return;
        }
        let started = Instant::now();
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&pool).await {
            Ok((busy, log, copied)) => {
                let took = started.elapsed();
                tracing::trace!(busy, log, copied, micros = took.as_micros() as u64, "checkpoint");
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
            Err(_) if pool.is_closed() => return,
            Err(e) => {
                run = 0;
                tracing::warn!(error = %e, "SQLite checkpoint failed; will retry");
            }
        }
    }
}
