//! Building statements whose length depends on the data (multi-row inserts,
//! `IN (…)` lists), for both backends at once.
//!
//! Why not sqlx's `QueryBuilder`: over the `Any` driver it writes `?` for
//! every value, which PostgreSQL rejects. Here values are bound as `$n` on
//! PostgreSQL and as `?` on SQLite. Not `$n` there too: SQLite treats `$n` (and
//! `?n`) as *named* parameters, and looking a name up walks the statement's
//! list of names, so binding the 4,000 values of a multi-row insert by name
//! cost quadratic time (`sqlite3_bind_parameter_name` was 45 % of the writer's
//! CPU, and the engine bench fell from 17,600 to 5,900 turns/s).

use std::fmt::Write as _;

use sqlx::{
    any::{AnyArguments, AnyQueryResult, AnyRow},
    Any, AnyConnection, Arguments as _, Encode, Executor, FromRow, Type,
};

use super::Backend;

/// A statement and its values, numbered as they are bound.
pub(crate) struct Sql<'a> {
    text: String,
    /// `$n` placeholders (PostgreSQL), else `?` (SQLite).
    numbered: bool,
    args: AnyArguments<'a>,
    count: usize,
    persistent: bool,
}

impl<'a> Sql<'a> {
    /// A statement for the backend `conn` is connected to.
    pub fn new(conn: &AnyConnection, text: impl Into<String>) -> Sql<'a> {
        let numbered = Backend::of_connection(conn) == Backend::Postgres;
        Sql { text: text.into(), numbered, args: AnyArguments::default(), count: 0, persistent: true }
    }

    /// Not kept as a prepared statement: for shapes that rarely repeat (the
    /// import's chunks), which would only fill the statement cache.
    pub fn once(&mut self) -> &mut Self {
        self.persistent = false;
        self
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder (`$n`, or `?` on SQLite) and binds its value.
    pub fn bind<T: 'a + Encode<'a, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        self.count += 1;
        if self.numbered {
            write!(self.text, "${}", self.count).expect("writing to a String");
        } else {
            self.text.push('?');
        }
        // Encoding into `Any`'s buffer only copies the value.
        self.args.add(value).expect("values of the types the store binds encode");
        self
    }

    /// Appends `(…), (…)`: one parenthesised group per item, its values
    /// bound by `each` through [`Values::bind`].
    pub fn rows<I: IntoIterator>(&mut self, items: I, mut each: impl FnMut(&mut Values<'_, 'a>, I::Item)) -> &mut Self {
        for (i, item) in items.into_iter().enumerate() {
            self.text.push_str(if i == 0 { "(" } else { ", (" });
            each(&mut Values { sql: self, first: true }, item);
            self.text.push(')');
        }
        self
    }

    /// Appends one placeholder per item, comma-separated (an `IN` list).
    pub fn list<T: 'a + Encode<'a, Any> + Type<Any>>(&mut self, items: impl IntoIterator<Item = T>) -> &mut Self {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(item);
        }
        self
    }

    pub async fn execute<'c, E: Executor<'c, Database = Any>>(self, on: E) -> sqlx::Result<AnyQueryResult> {
        sqlx::query_with(&self.text, self.args).persistent(self.persistent).execute(on).await
    }

    pub async fn fetch_all<'c, T, E>(self, on: E) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
        E: Executor<'c, Database = Any>,
    {
        sqlx::query_as_with(&self.text, self.args).persistent(self.persistent).fetch_all(on).await
    }
}

/// The values of one row of [`Sql::rows`].
pub(crate) struct Values<'s, 'a> {
    sql: &'s mut Sql<'a>,
    first: bool,
}

impl<'a> Values<'_, 'a> {
    pub fn bind<T: 'a + Encode<'a, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.sql.text.push_str(", ");
        }
        self.sql.bind(value);
        self
    }
}

/// Most rows per multi-row statement: a power of two (for [`pow2_chunks`]),
/// and well under SQLite's 32,766 bound values for the widest row (a
/// conversation binds 18).
pub(crate) const ROWS_PER_STATEMENT: usize = 256;

/// Splits `items` into chunks whose sizes are powers of two (300 rows:
/// 256 + 32 + 8 + 4). Statements of a few fixed shapes stay in sqlx's
/// prepared-statement cache; a fresh shape per batch would be parsed again
/// every time, which on small batches costs more than the writes.
pub(crate) fn pow2_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
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

#[cfg(test)]
impl Sql<'_> {
    fn plain(text: &str) -> Self {
        Sql { text: text.into(), numbered: false, args: AnyArguments::default(), count: 0, persistent: true }
    }
}

#[cfg(test)]
mod tests {
    use super::Sql;

    #[test]
    fn values_are_numbered_in_the_order_bound() {
        let mut q = Sql { numbered: true, ..Sql::plain("INSERT INTO t (a, b) VALUES ") };
        q.rows([(1_i64, "x"), (2, "y")], |v, (a, b)| {
            v.bind(a).bind(b);
        });
        q.push(" WHERE c IN (").list(["p", "q"]).push(")");
        assert_eq!(q.text, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) WHERE c IN ($5, $6)");
        assert_eq!(q.count, 6);
        let mut q = Sql::plain("SELECT 1 WHERE c IN (");
        q.list([1_i64, 2]).push(")");
        assert_eq!(q.text, "SELECT 1 WHERE c IN (?, ?)", "positional on SQLite");
    }

    #[test]
    fn chunks_have_power_of_two_sizes() {
        let items: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = super::pow2_chunks(&items, 256).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![256, 32, 8, 4]);
        let sizes: Vec<usize> = super::pow2_chunks(&items[..7], 4).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![4, 2, 1]);
        assert_eq!(super::pow2_chunks(&items[..0], 4).count(), 0);
    }
}
