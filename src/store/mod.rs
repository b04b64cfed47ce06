//! The store: conversations, their transcript and pinned flow sources, on
//! SQLite (the embedded default) or PostgreSQL (several instances, one
//! deployment).
//!
//! Queries are written once in `$1` placeholder SQL, which both dialects
//! accept, and run through the [`on_db!`] macro, which expands the same body
//! for each backend. Where the dialects differ the two sides are written out.
//!
//! All writes of a turn go through the [`writer`]: one task that gathers the
//! commits of concurrent turns into a single transaction, because on SQLite
//! the commit, not the statement, is the cost of a turn.

mod discord;
mod leader;
mod mail;
mod quotas;
mod rows;
pub mod writer;
mod writes;

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context as _;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    PgPool, SqlitePool,
};

pub use discord::{PrivatePlace, Undelivered};
pub use leader::Leadership;
pub use mail::Checkpoint;
pub use quotas::{Quota, Taken};
pub use rows::{new_conversation_id, ConversationRow, MessageRow, Status};
pub use writer::{CommitOutcome, ConversationWrite, NewMessage, TurnCommit};
pub(crate) use writes::ApplyWrites;
pub use writes::Write;

/// Errors at the store boundary. Callers show customers a short "try again";
/// logs get the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("starting the writer: {0}")]
    Io(#[from] std::io::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("lost to a concurrent writer; try again")]
    Contention,
    #[error("the batch this write was part of failed: {0}")]
    Batch(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query code against whichever backend is configured.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_db;

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    writer: writer::Writer,
}

impl Store {
    /// Connects, applies migrations, and starts the batching writer.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await
                .with_context(|| format!("connecting to {}", crate::config::redact_url(url)))?;
            sqlx::migrate!("migrations/postgres").run(&pool).await.context("migrating PostgreSQL")?;
            Db::Postgres(pool)
        } else {
            let opts = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("parsing the SQLite URL {url}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // Statement journals of multi-row statements stay in memory.
                .pragma("temp_store", "MEMORY")
                // Checkpoints run in the background (below), not inside the
                // writer's commits, where they would stall every queued turn.
                .pragma("wal_autocheckpoint", "0")
                // A 64 MiB page cache and memory-mapped reads: the writer's
                // B-tree descents should not be syscalls.
                .pragma("cache_size", "-65536")
                .pragma("mmap_size", "268435456");
            if let Some(parent) = opts.get_filename().parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(2))
                .connect_with(opts)
                .await
                .with_context(|| format!("opening {url}"))?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await.context("migrating SQLite")?;
            tokio::spawn(checkpoints(pool.clone()));
            Db::Sqlite(pool)
        };
        let writer = writer::Writer::start(db.clone()).await.context("starting the store writer")?;
        Ok(Store { db, writer })
    }

    /// The SQLite URL for a data folder.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("frontdesk.db").display())
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Commits one turn, batched with the turns of other conversations.
    pub async fn commit(&self, turn: TurnCommit) -> Result<CommitOutcome> {
        self.writer.commit(turn).await
    }

    /// Applies writes outside a turn (a skipped mail, a checkpoint, an
    /// agent's lookup in the audit log) in one transaction.
    pub async fn record(&self, writes: &[Write], now_ms: i64) -> Result<()> {
        on_db!(&self.db, p => {
            let mut tx = p.begin().await?;
            tx.apply_writes(writes, now_ms).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Marks outbound messages as delivered by their channel.
    pub async fn ack_delivered(&self, ids: Vec<(i64, i64)>, now_ms: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.writer.ack(ids, now_ms).await
    }

    /// The open conversation (waiting, scheduled or handed off) for a key.
    pub async fn open_conversation(&self, channel: &str, key: &str) -> Result<Option<ConversationRow>> {
        const SQL: &str = "SELECT * FROM conversations WHERE channel = $1 AND conv_key = $2 \
                           AND status IN ('waiting', 'scheduled', 'handed_off')";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).bind(channel).bind(key).fetch_optional(p).await?))
    }

    /// The most recent conversation for a key, whatever its status: the one
    /// with the latest transcript row (ids are random, and two conversations
    /// can start in the same millisecond).
    pub async fn latest_conversation(&self, channel: &str, key: &str) -> Result<Option<ConversationRow>> {
        const SQL: &str = "SELECT c.* FROM conversations c WHERE c.channel = $1 AND c.conv_key = $2 \
                           ORDER BY (SELECT MAX(m.id) FROM messages m WHERE m.conversation_id = c.id) DESC, c.created_at DESC LIMIT 1";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).bind(channel).bind(key).fetch_optional(p).await?))
    }

    /// Whether an inbound platform message was already processed.
    pub async fn inbound_seen(&self, channel: &str, external_id: &str) -> Result<bool> {
        const SQL: &str = "SELECT 1 FROM messages WHERE channel = $1 AND external_id = $2";
        let row: Option<(i32,)> =
            on_db!(&self.db, p => sqlx::query_as(SQL).bind(channel).bind(external_id).fetch_optional(p).await?);
        Ok(row.is_some())
    }

    /// The whole transcript of a conversation, in order.
    pub async fn transcript(&self, conversation_id: i64) -> Result<Vec<MessageRow>> {
        const SQL: &str = "SELECT * FROM messages WHERE conversation_id = $1 ORDER BY seq, id";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).bind(conversation_id).fetch_all(p).await?))
    }

    /// Outbound messages of a conversation not yet acknowledged by a channel.
    pub async fn undelivered(&self, conversation_id: i64) -> Result<Vec<MessageRow>> {
        const SQL: &str = "SELECT * FROM messages WHERE conversation_id = $1 AND direction = 'out' \
                           AND delivered_at IS NULL ORDER BY seq, id";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).bind(conversation_id).fetch_all(p).await?))
    }

    /// Remembers a flow source so conversations pinned to it survive edits.
    pub async fn save_flow_source(&self, hash: &str, name: &str, source: &str, now_ms: i64) -> Result<()> {
        const SQL: &str = "INSERT INTO flow_sources (hash, name, source, created_at) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT (hash) DO NOTHING";
        on_db!(&self.db, p => sqlx::query(SQL).bind(hash).bind(name).bind(source).bind(now_ms).execute(p).await.map(|_| ())?);
        Ok(())
    }

    pub async fn flow_source(&self, hash: &str) -> Result<Option<(String, String)>> {
        const SQL: &str = "SELECT name, source FROM flow_sources WHERE hash = $1";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).bind(hash).fetch_optional(p).await?))
    }

    /// Conversations waiting for the customer past their expiry, oldest first.
    pub async fn expired_conversations(&self, now_ms: i64, limit: i64) -> Result<Vec<ConversationRow>> {
        const SQL: &str = "SELECT * FROM conversations WHERE status = 'waiting' AND expires_at < $1 \
                           ORDER BY expires_at LIMIT $2";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).bind(now_ms).bind(limit).fetch_all(p).await?))
    }

    /// The audit log, newest first: `(at, channel, actor, by_agent, action, subject)`.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<(i64, String, String, Option<String>, String, String)>> {
        const SQL: &str =
            "SELECT at, channel, actor, by_agent, action, subject FROM audit_log ORDER BY id DESC LIMIT $1";
        Ok(on_db!(&self.db, p => sqlx::query_as(SQL).bind(limit).fetch_all(p).await?))
    }

    /// Waits until every queued write is committed (graceful shutdown).
    pub async fn flush(&self) {
        self.writer.flush().await;
    }

    pub async fn close(&self) {
        self.flush().await;
        if let Db::Sqlite(pool) = &self.db {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await {
                tracing::debug!(error = %e, "final checkpoint skipped");
            }
        }
        on_db!(&self.db, p => p.close().await);
    }
}

/// How often the WAL is copied into the database. Each checkpoint ends with
/// an fsync that stalls commits for a moment, so not too often; but the
/// longer the interval, the bigger (and longer) each one. Measured with
/// `frontdesk bench engine` at 100 ms, 250 ms and 1 s: 250 ms gave the best
/// throughput at a p99 of 4-7 ms; 1 s doubled the p99.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies the SQLite write-ahead log into the database every so often, on a
/// connection of its own. PASSIVE: it never waits for, nor blocks, the writer.
async fn checkpoints(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "SQLite checkpoint failed; will retry");
        }
    }
}
