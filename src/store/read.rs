//! The hot reads: SQLite reads that run on the thread that asks for them.
//!
//! Why: sqlx runs each SQLite statement on a worker thread of its
//! connection, and gives the connection back to its pool from a task of its
//! own. A read that takes 50 µs in SQLite held its pooled connection for the
//! time three hand-offs between threads take, and on two busy cores each of
//! those waits for a core: at 5,000 recovery turns/s (five reads a turn)
//! the eight connections were all held, and a read waited 10–150 ms for one
//! (`acquire` in a turn's timing, against 0.1–0.5 ms in the query). That
//! was the recovery bench's p99. Here a read takes an idle rusqlite
//! connection, runs, and puts it back, all within one call: a connection is
//! never held across an `.await`, so there are only ever as many in use as
//! threads reading, and nothing waits for one.
//!
//! Only point reads of a few rows belong here (they block the calling
//! task's thread for as long as they run); scans, exports and anything
//! that may take long stay on the pool. PostgreSQL reads go through the
//! pool as before (its connections are sockets the task drives itself).
//!
//! A row type is read by column name through [`Fields`], the same code for
//! both drivers ([`Record`]).

use std::{path::PathBuf, sync::Mutex};

use sqlx::any::AnyRow;

use super::{
    exec::{Column, Conn as _, Row, SqliteConn},
    sql::Sql,
    Result, Store,
};

/// Reading a column failed: the driver could not decode it, or its value
/// is not what the column should hold.
#[derive(Debug)]
pub(crate) struct FieldError {
    column: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl FieldError {
    pub(crate) fn new(column: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> FieldError {
        FieldError { column: column.to_string(), source: source.into() }
    }
}

impl From<FieldError> for sqlx::Error {
    fn from(e: FieldError) -> sqlx::Error {
        sqlx::Error::ColumnDecode { index: e.column, source: e.source }
    }
}

impl From<FieldError> for rusqlite::Error {
    fn from(e: FieldError) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("{}: {}", e.column, e.source).into(),
        )
    }
}

/// A result row of either driver, read by column name.
pub(crate) trait Fields {
    fn field<T: Column>(&self, column: &str) -> std::result::Result<T, FieldError>;
}

impl Fields for AnyRow {
    fn field<T: Column>(&self, column: &str) -> std::result::Result<T, FieldError> {
        sqlx::Row::try_get(self, column).map_err(|e| FieldError::new(column, e))
    }
}

impl Fields for rusqlite::Row<'_> {
    fn field<T: Column>(&self, column: &str) -> std::result::Result<T, FieldError> {
        self.get(column).map_err(|e| FieldError::new(column, e))
    }
}

/// A text column holding a value that parses (`crate::domain`'s types,
/// a status), read through its check.
pub(crate) fn parsed<T>(row: &impl Fields, column: &str) -> std::result::Result<T, FieldError>
where
    T: TryFrom<String>,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    T::try_from(row.field::<String>(column)?).map_err(|e| FieldError::new(column, e))
}

/// A row type, read the same way from either driver.
pub(crate) trait Record: Sized + Send {
    fn read(row: &impl Fields) -> std::result::Result<Self, FieldError>;
}

/// Makes [`Record`]s rows of both drivers: `sqlx::FromRow` (the pool's
/// queries) and [`Row`] ([`Store::read`], the writer).
macro_rules! records {
    ($($t:ty),+ $(,)?) => {$(
        impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for $t {
            fn from_row(row: &'r sqlx::any::AnyRow) -> sqlx::Result<$t> {
                Ok(<$t as $crate::store::read::Record>::read(row)?)
            }
        }
        impl $crate::store::exec::Row for $t {
            fn from_any(row: &sqlx::any::AnyRow) -> sqlx::Result<$t> {
                Ok(<$t as $crate::store::read::Record>::read(row)?)
            }
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<$t> {
                Ok(<$t as $crate::store::read::Record>::read(row)?)
            }
        }
    )+};
}
pub(crate) use records;

/// Idle SQLite connections for [`Store::read`].
pub(crate) struct Readers {
    file: PathBuf,
    pragmas: std::sync::Arc<str>,
    idle: Mutex<Vec<SqliteConn>>,
    /// Most idle connections kept (more may be open for a moment, one per
    /// thread reading at once).
    keep: usize,
}

impl Readers {
    /// Readers of `file`, each set up with `pragmas`; none open yet.
    pub fn new(file: PathBuf, pragmas: std::sync::Arc<str>, keep: usize) -> Readers {
        Readers { file, pragmas, idle: Mutex::new(Vec::new()), keep: keep.max(1) }
    }

    /// Runs `sql` on an idle connection (opening one if none is) and reads
    /// its rows, then gives the connection back.
    pub fn rows<R: Row>(&self, sql: &Sql<'_>) -> Result<Vec<R>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            // Readers never write: `query_only` makes sure of it.
            None => SqliteConn::open(&self.file, &format!("{} PRAGMA query_only = ON;", self.pragmas))?,
        };
        let rows = conn.rows_now(sql);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push(conn);
        }
        Ok(rows?)
    }
}

impl Store {
    /// A point read's rows: on SQLite on this thread ([`Readers`]), on
    /// PostgreSQL through the pool.
    pub(crate) async fn read<R: Row>(&self, sql: Sql<'_>) -> Result<Vec<R>> {
        match &self.readers {
            Some(readers) => readers.rows(&sql),
            None => self.pool.acquire().await?.rows(sql).await,
        }
    }

    /// [`Store::read`]'s first row, if any.
    pub(crate) async fn read_first<R: Row>(&self, sql: Sql<'_>) -> Result<Option<R>> {
        Ok(self.read(sql).await?.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::{super::Store, Sql};

    /// The inline readers see what the writer committed, carry the store's
    /// settings, and cannot write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_readers_see_commits_and_never_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(dir.path()), 4).await.unwrap();
        let readers = store.readers.clone().expect("a file store reads inline");
        assert!(!store.mail_seen("k1").await.unwrap());
        let received = crate::store::MailReceived {
            message_key: "k1".into(),
            source: "ingest".into(),
            sender: "a@example.com".into(),
            subject: "s".into(),
            outcome: "skipped".into(),
            reason: None,
        };
        store.record(&[crate::store::Write::MailReceived(received)], 1).await.unwrap();
        assert!(store.mail_seen("k1").await.unwrap(), "a commit is seen by the next read");

        let (cache,): (i64,) = readers.rows(&Sql::fixed("PRAGMA cache_size")).unwrap().remove(0);
        assert_eq!(cache, -4096);
        let written = readers.rows::<(i64,)>(&Sql::fixed("DELETE FROM mail_received RETURNING 1"));
        assert!(written.is_err(), "a reader refuses to write");
        assert!(store.mail_seen("k1").await.unwrap());
        assert!(readers.idle.lock().unwrap().len() <= 1, "one thread read at a time: one connection");
        store.close().await;
    }
}
