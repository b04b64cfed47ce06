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
    Any, Arguments as _, Executor, FromRow,
};

use super::exec::{Bind, Conn, Value};
use super::Backend;

/// A statement and its values, numbered as they are bound.
pub(crate) struct Sql<'a> {
    text: String,
    /// `$n` placeholders (PostgreSQL), else `?` (SQLite).
    numbered: bool,
    values: Vec<Value<'a>>,
    persistent: bool,
}

impl<'a> Sql<'a> {
    /// A statement for the backend `conn` is connected to.
    pub fn new<C: Conn + ?Sized>(conn: &C, text: impl Into<String>) -> Sql<'a> {
        let numbered = conn.backend() == Backend::Postgres;
        Sql { text: text.into(), numbered, values: Vec::new(), persistent: true }
    }

    /// A statement of fixed text whose placeholders are written out as
    /// `$1`, `$2`, … in the order of their values, each used once (both
    /// backends bind them by position); its values are added by [`Sql::arg`].
    pub fn fixed(text: &str) -> Sql<'a> {
        Sql { text: text.into(), numbered: true, values: Vec::new(), persistent: true }
    }

    /// The next value of a [`Sql::fixed`] statement.
    pub fn arg(mut self, value: impl Bind<'a>) -> Self {
        self.values.push(value.value());
        self
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
    pub fn bind(&mut self, value: impl Bind<'a>) -> &mut Self {
        self.values.push(value.value());
        if self.numbered {
            write!(self.text, "${}", self.values.len()).expect("writing to a String");
        } else {
            self.text.push('?');
        }
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
    pub fn list<T: Bind<'a>>(&mut self, items: impl IntoIterator<Item = T>) -> &mut Self {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(item);
        }
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn values(&self) -> &[Value<'a>] {
        &self.values
    }

    /// The text, the values as sqlx's `Any` arguments (borrowed strings
    /// stay borrowed), and whether it is kept prepared.
    fn into_any(self) -> (String, AnyArguments<'a>, bool) {
        use std::borrow::Cow;
        let mut args = AnyArguments::default();
        for v in self.values {
            match v {
                Value::Int(i) => args.add(i),
                Value::Text(Some(Cow::Borrowed(t))) => args.add(t),
                Value::Text(Some(Cow::Owned(t))) => args.add(t),
                Value::Text(None) => args.add(None::<&str>),
            }
            .expect("integers and strings encode");
        }
        (self.text, args, self.persistent)
    }

    pub async fn execute<'c, E: Executor<'c, Database = Any>>(self, on: E) -> sqlx::Result<AnyQueryResult> {
        let (text, args, persistent) = self.into_any();
        sqlx::query_with(&text, args).persistent(persistent).execute(on).await
    }

    pub async fn fetch_all<'c, T, E>(self, on: E) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
        E: Executor<'c, Database = Any>,
    {
        let (text, args, persistent) = self.into_any();
        sqlx::query_as_with(&text, args).persistent(persistent).fetch_all(on).await
    }

    pub async fn fetch_rows<'c, E: Executor<'c, Database = Any>>(self, on: E) -> sqlx::Result<Vec<AnyRow>> {
        let (text, args, persistent) = self.into_any();
        sqlx::query_with(&text, args).persistent(persistent).fetch_all(on).await
    }
}

/// The values of one row of [`Sql::rows`].
pub(crate) struct Values<'s, 'a> {
    sql: &'s mut Sql<'a>,
    first: bool,
}

impl<'a> Values<'_, 'a> {
    pub fn bind(&mut self, value: impl Bind<'a>) -> &mut Self {
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
        Sql { text: text.into(), numbered: false, values: Vec::new(), persistent: true }
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
        assert_eq!(q.values.len(), 6);
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
