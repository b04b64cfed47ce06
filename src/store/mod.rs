//! The store: the only module that speaks SQL. Conversations, their
//! transcript and pinned flow sources, the directory, the outbox, quotas,
//! requests, jobs and what each channel remembers, on SQLite (the embedded
//! default) or PostgreSQL (several instances, one deployment).
//!
//! One code path serves both backends: queries run on sqlx's `Any` driver,
//! written in `$1` placeholder SQL, which both dialects accept; statements
//! whose length depends on the data are built by [`sql::Sql`], which binds
//! with each backend's cheapest placeholders (`?` on SQLite, where thousands
//! of named `$n` bind in quadratic time). The few real
//! differences (how the writer's transaction begins, row locks, advisory
//! locks, PRAGMAs) are [`Backend`]'s methods and nowhere else. Each domain's
//! SQL lives in its own module here (`conversations`, `directory`, `outbox`,
//! `audit`, `quotas`, `requests`, `jobs`, `mail`, `discord`), and the store
//! imports no domain module: domain code calls these methods with values it
//! has already parsed.
//!
//! All writes of a turn go through the [`writer`]: one task that gathers the
//! commits of concurrent turns into a single transaction, because on SQLite
//! the commit, not the statement, is the cost of a turn. Its statements are
//! written once over [`exec::Conn`]: on PostgreSQL that is sqlx's
//! connection, on SQLite a plain SQLite connection of the writer's own
//! thread (rusqlite), where sqlx would hand each statement to another thread.

mod audit;
mod batch;
mod conversations;
pub mod directory;
mod discord;
mod exec;
mod jobs;
pub mod keys;
mod leader;
mod mail;
pub mod outbox;
mod pcache;
mod quotas;
mod read;
pub mod requests;
mod rows;
mod sending;
mod slack;
mod sql;
mod sqlite_global;
mod wal;
mod walvfs;
pub mod writer;
mod writes;

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context as _;
use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    sqlite::SqliteConnectOptions,
    AnyConnection, AnyPool, ConnectOptions as _, Executor as _,
};

pub use audit::{Audit, AuditRow};
pub use conversations::ChannelShape;
pub use discord::{PrivatePlace, Undelivered};
pub use jobs::{Job, NewJob};
pub use leader::Leadership;
pub use mail::{Checkpoint, MailCheckpoint, MailReceived};
pub use quotas::{Quota, Taken};
pub use rows::{new_conversation_id, ConversationRow, Direction, Holder, MessageRow, Status};
pub use slack::SlackPlace;
pub use writer::{CommitOutcome, ConversationWrite, NewMessage, TurnCommit};
pub use writes::Write;

/// Errors at the store boundary. Callers show customers a short "try again";
/// logs get the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite writer's own connection ([`exec`]).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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

/// Which database the store runs on: where the dialects differ, the
/// difference is a method here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The backend a connection is to.
    fn of_connection(conn: &AnyConnection) -> Backend {
        if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// How the writer's batch begins. On SQLite the batch reads before it
    /// writes; a deferred transaction would fail with SQLITE_BUSY_SNAPSHOT
    /// (which no busy timeout waits out) whenever another connection wrote
    /// in between, so it takes the write lock up front.
    fn begin_batch(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Appended to a `SELECT` whose rows a claimer takes: on PostgreSQL,
    /// concurrent claimers skip each other's rows; SQLite has one writer at a
    /// time, and the claiming `UPDATE` is the lock.
    fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Whether an import into an empty table drops the table's
    /// [`directory::LATE_INDEXES`] and builds them after its rows. On
    /// PostgreSQL dropping an index locks the table against every reader
    /// until the import commits, which would stall lookups for its whole
    /// length; on SQLite readers keep their snapshot.
    fn bulk_loads_empty_tables(self) -> bool {
        self == Backend::Sqlite
    }

    /// The settings of an import's own connection. SQLite: the pool's,
    /// but temporary files (the sorts that build indexes after a bulk load,
    /// statement journals) on disk rather than in memory, where a sort of
    /// 3.5 million keys held hundreds of megabytes, and no memory-mapped
    /// reads, whose pages count as the process's (the OS caches the file
    /// all the same). Its commit leaves the WAL to the background
    /// checkpoints, as the writer's do.
    fn import_pragmas(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => Some(SQLITE_IMPORT_PRAGMAS),
            Backend::Postgres => None,
        }
    }

    /// Whether takers of a quota must lock it across instances (PostgreSQL);
    /// on SQLite the writer's `BEGIN IMMEDIATE` already serialises them.
    fn locks_quotas(self) -> bool {
        self == Backend::Postgres
    }
}

/// Set on every SQLite connection as it opens (with the page cache and the
/// memory-mapped reads of [`StoreOptions`]). Statement journals of
/// multi-row statements stay in memory; checkpoints run in the background
/// ([`wal`]), not inside the writer's commits, where they would stall
/// every queued turn; [`wal`] also starts the log over when it grows, and
/// `journal_size_limit` ([`wal::FILE_LIMIT`], added where the connection
/// options are built) cuts the file back then.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; \
    PRAGMA journal_mode = WAL; \
    PRAGMA synchronous = NORMAL; \
    PRAGMA foreign_keys = ON; \
    PRAGMA temp_store = MEMORY; \
    PRAGMA wal_autocheckpoint = 0;";

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// The pool's size.
    pub max_connections: u32,
    /// SQLite's page cache, per reading connection (`database.sqlite_cache_mb`).
    /// Small on purpose: in WAL mode a connection drops its whole cache
    /// when another one has committed since its last read, which the writer
    /// does a thousand times a second, so a reader's cache lives for one
    /// read; the OS caches the file for all of them.
    pub sqlite_cache_mb: u32,
    /// The writer's page cache (`database.sqlite_writer_cache_mb`): its own
    /// commits keep it, so the index pages every insert walks stay in it.
    pub sqlite_writer_cache_mb: u32,
    /// SQLite's memory-mapped reads, per connection (`database.sqlite_mmap_mb`):
    /// pages read this way count in the process's memory.
    pub sqlite_mmap_mb: u32,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { max_connections: 8, sqlite_cache_mb: 4, sqlite_writer_cache_mb: 16, sqlite_mmap_mb: 0 }
    }
}
/// How long [`Store::checkpoint`] keeps asking for its turn.
const CHECKPOINT_PATIENCE: Duration = Duration::from_secs(10);

/// An import's connection (see [`Backend::import_pragmas`]).
const SQLITE_IMPORT_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; \
    PRAGMA synchronous = NORMAL; \
    PRAGMA foreign_keys = ON; \
    PRAGMA wal_autocheckpoint = 0; \
    PRAGMA temp_store = FILE; \
    PRAGMA cache_size = -32768; \
    PRAGMA mmap_size = 0;";

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writer: writer::Writer,
    /// SQLite's inline readers (none on PostgreSQL, or in memory).
    readers: Option<std::sync::Arc<read::Readers>>,
    /// How to open a connection outside the pool (an import's).
    connect_options: std::sync::Arc<AnyConnectOptions>,
}

impl Store {
    /// Connects, applies migrations, and starts the batching writer, with
    /// the default options and `max_connections`.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        Store::open_with(url, StoreOptions { max_connections, ..StoreOptions::default() }).await
    }

    /// Connects, applies migrations, and starts the batching writer.
    pub async fn open_with(url: &str, opts: StoreOptions) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url);
        if backend == Backend::Sqlite {
            sqlite_global::configure();
        }
        let pragmas = |cache_mb: u32| -> std::sync::Arc<str> {
            format!(
                "{SQLITE_PRAGMAS} PRAGMA journal_size_limit = {}; PRAGMA cache_size = -{}; PRAGMA mmap_size = {};",
                wal::FILE_LIMIT,
                u64::from(cache_mb) * 1024,
                u64::from(opts.sqlite_mmap_mb) << 20
            )
            .into()
        };
        let connect = connect_options(&match backend {
            Backend::Postgres => url.to_string(),
            Backend::Sqlite => creating(url),
        })?;
        // The pool's options for `size` connections of this backend, with
        // SQLite's page cache of `cache_mb` each.
        let sized = |size: u32, cache_mb: u32| {
            let options = AnyPoolOptions::new().max_connections(size);
            match backend {
                Backend::Postgres => options.acquire_timeout(Duration::from_secs(10)),
                // A connection to a local file does not drop: no ping before
                // each use (on SQLite a ping is one more round trip to the
                // connection's thread, for every read).
                Backend::Sqlite => {
                    let pragmas = pragmas(cache_mb);
                    options.test_before_acquire(false).after_connect(move |conn: &mut AnyConnection, _| {
                        let pragmas = pragmas.clone();
                        Box::pin(async move { conn.execute(&*pragmas).await.map(|_| ()) })
                    })
                }
            }
        };
        // The writer has a connection of its own (made after the
        // migrations): a batch never waits for the readers to give one back.
        // The readers: the pool's connections, or on SQLite the idle ones
        // the inline reads keep.
        let readers_size = opts.max_connections.max(2);
        let (pool, db, readers) = match backend {
            Backend::Postgres => {
                let pool = sized(readers_size, opts.sqlite_cache_mb)
                    .connect_with(connect.clone())
                    .await
                    .with_context(|| format!("connecting to {}", crate::config::redact_url(url)))?;
                sqlx::migrate!("migrations/postgres").run(&pool).await.context("migrating PostgreSQL")?;
                let writer = sized(1, opts.sqlite_writer_cache_mb)
                    .connect_with(connect.clone())
                    .await
                    .context("connecting the store writer")?;
                (pool, writer::Db::Postgres(writer), None)
            }
            Backend::Sqlite => {
                let parsed =
                    SqliteConnectOptions::from_str(url).with_context(|| format!("parsing the SQLite URL {url}"))?;
                let file = parsed.get_filename().to_path_buf();
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                // Processes starting together on a fresh folder (`serve` and
                // `chat`) would both convert the new file to WAL and apply
                // the migrations; SQLite has no advisory lock for sqlx to
                // take, so a lock file serialises opening, and the second
                // finds both done.
                let in_memory = url.contains(":memory:");
                let lock = if in_memory { None } else { Some(migration_lock(&file).await?) };
                let pool = sized(readers_size, opts.sqlite_cache_mb)
                    .connect_with(connect.clone())
                    .await
                    .with_context(|| format!("opening {url}"))?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await.context("migrating SQLite")?;
                drop(lock);
                let wal = wal::Bound::new();
                if !in_memory {
                    tokio::spawn(wal::checkpoints(file.clone(), pragmas(1), pool.clone(), wal.clone()));
                }
                let readers = (!in_memory).then(|| {
                    let keep = readers_size as usize;
                    std::sync::Arc::new(read::Readers::new(file.clone(), pragmas(opts.sqlite_cache_mb), keep))
                });
                let pragmas = pragmas(opts.sqlite_writer_cache_mb);
                let writer = tokio::task::spawn_blocking(move || exec::SqliteConn::open(&file, &pragmas))
                    .await?
                    .context("opening the store writer's connection")?;
                (pool, writer::Db::Sqlite(writer, wal), readers)
            }
        };
        let writer = writer::Writer::start(db).await.context("starting the store writer")?;
        Ok(Store { pool, backend, writer, readers, connect_options: std::sync::Arc::new(connect) })
    }

    /// Whether the store can serve: it answers, with every migration this
    /// build knows applied (a newer build's extra ones are fine).
    pub async fn check_ready(&self) -> Result<(), String> {
        const SQL: &str = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
        let (applied,): (i64,) = sqlx::query_as(SQL).fetch_one(&self.pool).await.map_err(|e| e.to_string())?;
        let known = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").iter().count(),
            Backend::Postgres => sqlx::migrate!("migrations/postgres").iter().count(),
        } as i64;
        if applied < known {
            return Err(format!("{applied} of {known} migrations applied"));
        }
        Ok(())
    }

    /// The SQLite URL for a data folder.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("frontdesk.db").display())
    }

    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Commits one turn, batched with the turns of other conversations.
    pub async fn commit(&self, turn: TurnCommit) -> Result<CommitOutcome> {
        self.writer.commit(turn).await
    }

    /// Applies writes outside a turn (a skipped mail, a checkpoint, an
    /// agent's lookup in the audit log) in one transaction.
    pub async fn record(&self, writes: &[Write], now_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        writes::apply(&mut *tx, &writes::alone(writes), now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks outbound messages as delivered by their channel.
    pub async fn ack_delivered(&self, ids: Vec<(i64, i64)>, now_ms: i64) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.writer.ack(ids, now_ms).await
    }

    /// Waits until every queued write is committed (graceful shutdown).
    pub async fn flush(&self) {
        self.writer.flush().await;
    }

    /// Copies the whole SQLite write-ahead log into the database now (a
    /// bench does it after loading a directory, so that measurements do not
    /// pay for the load's checkpoint); nothing on PostgreSQL.
    ///
    /// SQLite turns a checkpoint away at once, without waiting, while
    /// another connection is running one, as the background passes
    /// ([`wal`]) do every few milliseconds; so it is tried again until it
    /// gets its turn (for up to [`CHECKPOINT_PATIENCE`]).
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + CHECKPOINT_PATIENCE;
        loop {
            let (busy, _, _): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.pool).await?;
            if busy == 0 {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(StoreError::Contention);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub async fn close(&self) {
        self.flush().await;
        if let Err(e) = self.checkpoint().await {
            tracing::debug!(error = %e, "final checkpoint skipped");
        }
        self.pool.close().await;
    }
}

/// How to connect. A statement slower than a second is logged at debug
/// level, not as a warning: the import's multi-row upserts take that long by
/// design, and sqlx prints the whole statement (one line of 150 KB).
fn connect_options(url: &str) -> anyhow::Result<AnyConnectOptions> {
    let options = AnyConnectOptions::from_str(url).context("parsing the database URL")?;
    Ok(options.log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1)))
}

/// An exclusive lock on `<database>-migrate.lock`, held until dropped. Taken
/// on a blocking thread: waiting for another process's migrations must not
/// stall the runtime.
async fn migration_lock(database: &Path) -> anyhow::Result<std::fs::File> {
    let mut name = database.as_os_str().to_owned();
    name.push("-migrate.lock");
    let path = std::path::PathBuf::from(name);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock().with_context(|| format!("locking {}", path.display()))?;
        Ok(file)
    })
    .await?
}

/// `url` with `mode=rwc` unless it names a mode: the embedded store creates
/// its file on first start.
fn creating(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

#[cfg(test)]
mod tests {
    use super::{MailReceived, Store, Write};

    /// A skipped mail from a@example.com with a 500-byte subject: a row of
    /// some size, for tests that fill the log.
    pub(super) fn received(message_key: String) -> Write {
        Write::MailReceived(MailReceived {
            message_key,
            source: "ingest".into(),
            sender: "a@example.com".into(),
            subject: "x".repeat(500),
            outcome: "skipped".into(),
            reason: None,
        })
    }

    /// `checkpoint` empties the log although another connection is
    /// copying it too (the background passes, every few milliseconds):
    /// SQLite refuses a second checkpointer at once without waiting, and a
    /// bench phase then began with the last phase's whole log (600 MB) and
    /// paid for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_empties_the_log_while_another_is_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(dir.path()), 4).await.unwrap();
        let file = dir.path().join("frontdesk.db");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let other = {
            let (file, stop) = (file.clone(), stop.clone());
            std::thread::spawn(move || {
                let conn = super::exec::SqliteConn::open(&file, "").unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    conn.checkpoint().unwrap();
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            })
        };
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        for round in 0..20 {
            let writes: Vec<Write> = (0..200).map(|i| received(format!("<{round}-{i}@example.com>"))).collect();
            store.record(&writes, 1).await.unwrap();
            store.checkpoint().await.unwrap();
            let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            assert_eq!(left, 0, "round {round}: the log still holds {left} bytes");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        other.join().unwrap();
        store.close().await;
    }

    /// Every pooled SQLite connection runs with the settings the store's
    /// speed depends on (synchronous = NORMAL: no fsync per commit in WAL
    /// mode; the page cache; no automatic checkpoints).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_connections_carry_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(dir.path()), 4).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(store.pool.acquire().await.unwrap());
        }
        for conn in &mut held {
            for (pragma, want) in [
                ("PRAGMA synchronous", 1), // NORMAL
                ("PRAGMA cache_size", -4096),
                ("PRAGMA wal_autocheckpoint", 0),
                ("PRAGMA journal_size_limit", super::wal::FILE_LIMIT as i64),
                ("PRAGMA foreign_keys", 1),
            ] {
                let (got,): (i64,) = sqlx::query_as(pragma).fetch_one(&mut **conn).await.unwrap();
                assert_eq!(got, want, "{pragma}");
            }
        }
        drop(held);
        store.close().await;
    }
}
