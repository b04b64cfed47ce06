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
//! the file is past [`WAL_LIMIT`], the writer itself, between two batches
//! (when no frame can be added), copies what is left, and its next
//! transaction starts the log over, truncating the file to the connections'
//! `journal_size_limit`. It does so only just after a short background pass:
//! a pass copies what was committed while the one before it ran, so passes
//! run back to back get shorter, and once one takes under
//! [`SHORT_PASS`], what is left for the writer is about as little. Copying
//! what a 250 ms interval had left stalled the writer for 30-70 ms.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use sqlx::AnyPool;

use super::exec::SqliteConn;

/// How often the WAL is copied into the database. Each checkpoint ends with
/// an fsync that stalls commits for a moment, so not too often; but the
/// longer the interval, the bigger (and longer) each one. Measured with
/// `frontdesk bench engine` at 100 ms, 250 ms and 1 s: 250 ms gave the best
/// throughput at a p99 of 4-7 ms; 1 s doubled the p99.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Past this size the writer starts the log over; also the connections'
/// `journal_size_limit`, the size SQLite cuts the file back to then, so the
/// file stays this big and later frames overwrite blocks it already has.
/// Each start-over stalls the writer for a checkpoint's fsync (10-19 ms
/// here), and at full load the log grows by ~140 MB/s: at 64 MiB
/// `bench engine --workload recovery` reached 13,000-14,200 turns/s, at
/// 256 MiB 15,900-17,700, at 1 GiB 17,000-17,300 (2026-12-02, three runs
/// each; the p99 at 5,000 offered moved within its noise). 256 MiB is most
/// of the gain for a quarter of the disk.
pub(super) const WAL_LIMIT: u64 = 256 << 20;

/// A background pass this short leaves the writer little to copy.
const SHORT_PASS: Duration = Duration::from_millis(3);

/// How recent a short pass must be for the writer to finish after it.
const FRESH: Duration = Duration::from_millis(5);

/// What the background checkpoints and the writer share.
#[derive(Clone)]
pub(crate) struct Bound {
    /// The log's file.
    file: PathBuf,
    /// When the last short pass ended, in microseconds since `epoch` (0: none
    /// since the writer last finished one).
    caught_up: Arc<AtomicU64>,
    epoch: Instant,
}

impl Bound {
    pub(crate) fn new(database: &Path) -> Bound {
        let mut file = database.as_os_str().to_owned();
        file.push("-wal");
        Bound { file: file.into(), caught_up: Arc::new(AtomicU64::new(0)), epoch: Instant::now() }
    }

    fn over_limit(&self) -> bool {
        std::fs::metadata(&self.file).is_ok_and(|m| m.len() > WAL_LIMIT)
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Called by the writer between batches: starts the log over when it is
    /// past [`WAL_LIMIT`] and a short background pass has just ended.
    pub(crate) fn keep(&self, conn: &SqliteConn) {
        let ended = self.caught_up.load(Ordering::Acquire);
        if ended == 0 || self.now().saturating_sub(ended) > FRESH.as_micros() as u64 || !self.over_limit() {
            return;
        }
        self.caught_up.store(0, Ordering::Release);
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
                if busy == 0 && took < SHORT_PASS {
                    bound.caught_up.store(bound.now().max(1), Ordering::Release);
                }
                let again = busy == 0 && took >= SHORT_PASS && bound.over_limit();
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
