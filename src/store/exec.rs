//! Where the writer's statements run: one set of functions (a turn's
//! commit, quota takes, the effects' writes) over two kinds of connection.
//!
//! Why two: on PostgreSQL sqlx's connection is a socket the task drives
//! itself. On SQLite sqlx runs every statement on a worker thread of the
//! connection's own, so each statement is two thread hand-offs; a writer
//! batch makes a dozen or more, and on a busy machine each hand-off waits
//! for a core (the recovery bench's writer was busy 95 % of the time at
//! 5,000 turns/s, a third of it waiting to be scheduled). So the SQLite
//! writer runs its batches on a plain SQLite connection (rusqlite, over the
//! same SQLite library sqlx links) on its own thread, where a statement is a
//! function call. Everything else (readers, imports, migrations) stays on
//! sqlx.
//!
//! [`Conn`] is what the writer's functions need of a connection: run a
//! [`Sql`], or fetch its rows as a tuple of integers and strings ([`Row`]).
//! On the rusqlite side its futures are ready at once.

use std::future::Future;

use rusqlite::types::{FromSql, ToSqlOutput, ValueRef};
use sqlx::{any::AnyRow, Any, AnyConnection, Decode, Row as _, Type};

use super::{sql::Sql, Backend, Result};

/// A bound value: an integer or a text, each possibly NULL. The type of a
/// NULL is kept, because PostgreSQL types a parameter by what was bound.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Int(Option<i64>),
    Text(Option<std::borrow::Cow<'a, str>>),
}

/// What [`Sql::bind`] takes.
pub(crate) trait Bind<'a> {
    fn value(self) -> Value<'a>;
}

impl<'a> Bind<'a> for i64 {
    fn value(self) -> Value<'a> {
        Value::Int(Some(self))
    }
}

impl<'a> Bind<'a> for Option<i64> {
    fn value(self) -> Value<'a> {
        Value::Int(self)
    }
}

impl<'a> Bind<'a> for &'a str {
    fn value(self) -> Value<'a> {
        Value::Text(Some(self.into()))
    }
}

impl<'a> Bind<'a> for &'a String {
    fn value(self) -> Value<'a> {
        Value::Text(Some(self.as_str().into()))
    }
}

impl<'a> Bind<'a> for String {
    fn value(self) -> Value<'a> {
        Value::Text(Some(self.into()))
    }
}

impl<'a> Bind<'a> for Option<&'a str> {
    fn value(self) -> Value<'a> {
        Value::Text(self.map(Into::into))
    }
}

impl<'a> Bind<'a> for Option<String> {
    fn value(self) -> Value<'a> {
        Value::Text(self.map(Into::into))
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Int(Some(i)) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Int(None) | Value::Text(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// A row the writer reads back: a tuple of integers and strings.
pub(crate) trait Row: Sized + Send {
    fn from_any(row: &AnyRow) -> sqlx::Result<Self>;
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// A column type both drivers decode.
pub(crate) trait Column: for<'r> Decode<'r, Any> + Type<Any> + FromSql + Send {}
impl<T: for<'r> Decode<'r, Any> + Type<Any> + FromSql + Send> Column for T {}

macro_rules! tuple_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Column),+> Row for ($($t,)+) {
            fn from_any(row: &AnyRow) -> sqlx::Result<Self> {
                Ok(($(row.try_get::<$t, _>($i)?,)+))
            }
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $t>($i)?,)+))
            }
        }
    };
}
tuple_row!(A 0);
tuple_row!(A 0, B 1);
tuple_row!(A 0, B 1, C 2);

/// A connection the writer's statements run on.
pub(crate) trait Conn: Send {
    fn backend(&self) -> Backend;
    /// Runs a statement; the rows it changed.
    fn run(&mut self, sql: Sql<'_>) -> impl Future<Output = Result<u64>> + Send;
    /// Runs a statement and reads its rows.
    fn rows<R: Row>(&mut self, sql: Sql<'_>) -> impl Future<Output = Result<Vec<R>>> + Send;
}

impl Conn for AnyConnection {
    fn backend(&self) -> Backend {
        Backend::of_connection(self)
    }

    async fn run(&mut self, sql: Sql<'_>) -> Result<u64> {
        Ok(sql.execute(self).await?.rows_affected())
    }

    async fn rows<R: Row>(&mut self, sql: Sql<'_>) -> Result<Vec<R>> {
        let rows = sql.fetch_rows(self).await?;
        Ok(rows.iter().map(R::from_any).collect::<sqlx::Result<_>>()?)
    }
}

/// The SQLite writer's own connection.
pub(crate) struct SqliteConn(rusqlite::Connection);

impl SqliteConn {
    /// Opens `file` with `pragmas` and room for the writer's statement
    /// shapes (each power-of-two chunk size of each statement) prepared.
    pub fn open(file: &std::path::Path, pragmas: &str) -> rusqlite::Result<SqliteConn> {
        super::sqlite_global::configure();
        let conn = rusqlite::Connection::open(file)?;
        conn.execute_batch(pragmas)?;
        conn.set_prepared_statement_cache_capacity(256);
        Ok(SqliteConn(conn))
    }

    /// Begins a transaction with `begin` (the writer's `BEGIN IMMEDIATE`).
    pub fn begin(&self, begin: &str) -> rusqlite::Result<()> {
        self.0.execute_batch(begin)
    }

    /// Commits; on failure the transaction is rolled back, as it is when
    /// `done` is already a failure, so that the next batch starts clean
    /// (a failed statement, or a failed commit, leaves it open).
    pub fn finish<T>(&self, done: Result<T>) -> Result<T> {
        let done = done.and_then(|applied| Ok(self.0.execute_batch("COMMIT").map(|_| applied)?));
        if done.is_err() && !self.0.is_autocommit() {
            if let Err(e) = self.0.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "rolling back a failed batch");
            }
        }
        done
    }

    /// Pages this connection wrote to the log since it was last asked: a
    /// batch's frames, which cost its commit a checksum and a write each.
    pub fn pages_written(&self) -> i64 {
        let (mut pages, mut most) = (0, 0);
        // SAFETY: the handle is this open connection's own, used on this
        // thread only; sqlite3_db_status reads (and resets) a counter of it.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                self.0.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE,
                &mut pages,
                &mut most,
                1,
            )
        };
        if rc == rusqlite::ffi::SQLITE_OK {
            i64::from(pages)
        } else {
            0
        }
    }

    /// The database's page size, in bytes.
    pub fn page_size(&self) -> rusqlite::Result<i64> {
        self.0.query_row("PRAGMA page_size", [], |r| r.get(0))
    }

    /// A passive checkpoint: (busy, frames in the log, frames copied).
    pub fn checkpoint(&self) -> rusqlite::Result<(i64, i64, i64)> {
        self.0.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    }

    /// Writes the database file's dirty pages to the disk (an fdatasync),
    /// through SQLite's own handle of the file. Not through a descriptor of
    /// our own: closing any descriptor of a file drops every POSIX lock the
    /// process holds on it, SQLite's included. Nothing to do for a file
    /// SQLite holds no open handle of.
    pub fn sync_database(&self) -> rusqlite::Result<()> {
        use rusqlite::ffi;
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: the handle is this open connection's own, used on this
        // thread only. FILE_POINTER writes the main database's
        // `sqlite3_file` (owned by the connection, alive while it is) into
        // `file`; its methods are SQLite's VFS's, and xSync takes the file
        // and a flag. No other thread uses this connection's file object.
        let rc = unsafe {
            let rc = ffi::sqlite3_file_control(
                self.0.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            );
            if rc != ffi::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
                rc
            } else {
                match (*(*file).pMethods).xSync {
                    Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL),
                    None => ffi::SQLITE_OK,
                }
            }
        };
        match rc {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some("syncing the database file".into()))),
        }
    }

    fn statement(&self, sql: &Sql<'_>) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
        // A statement that is not kept is still prepared through the
        // cache, which keeps the most recent 256: the writer's shapes are few.
        let mut stmt = self.0.prepare_cached(sql.text())?;
        debug_assert_eq!(stmt.parameter_count(), sql.values().len(), "{}", sql.text());
        for (i, value) in sql.values().iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, value)?;
        }
        Ok(stmt)
    }

    fn run_now(&self, sql: &Sql<'_>) -> rusqlite::Result<u64> {
        let mut stmt = self.statement(sql)?;
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        Ok(self.0.changes())
    }

    pub(super) fn rows_now<R: Row>(&self, sql: &Sql<'_>) -> rusqlite::Result<Vec<R>> {
        let mut stmt = self.statement(sql)?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(R::from_sqlite(row)?);
        }
        Ok(out)
    }
}

impl Conn for SqliteConn {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn run(&mut self, sql: Sql<'_>) -> Result<u64> {
        Ok(self.run_now(&sql)?)
    }

    async fn rows<R: Row>(&mut self, sql: Sql<'_>) -> Result<Vec<R>> {
        Ok(self.rows_now(&sql)?)
    }
}
