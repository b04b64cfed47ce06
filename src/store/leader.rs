//! Work that one instance of a shared deployment must do alone (the Discord
//! gateway: Discord hands each event to one session). On PostgreSQL the
//! leader holds a session-level advisory lock on a connection of its own; the
//! lock goes when that connection does, so a dead leader frees it. SQLite
//! is one process's store: that process always leads.

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection};

use super::{Backend, Result, Store};

/// Held while this instance leads; dropping it (or losing its connection)
/// gives the lead up.
pub struct Leadership {
    /// `None` on SQLite.
    connection: Option<AnyConnection>,
}

impl Leadership {
    /// Whether the lead still holds: the connection carrying the lock is
    /// alive. A leader that lost it must stop the work, as another instance
    /// may take over.
    pub async fn holds(&mut self) -> bool {
        match &mut self.connection {
            None => true,
            Some(c) => c.ping().await.is_ok(),
        }
    }
}

/// The advisory lock key of a named piece of work.
fn key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

impl Store {
    /// Takes the lead of `name` if no other instance holds it.
    pub async fn try_lead(&self, name: &str) -> Result<Option<Leadership>> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(Leadership { connection: None }));
        }
        // Detached: the lock must live and die with this connection, never
        // go back to the pool with it.
        let mut connection = self.pool.acquire().await?.detach();
        let (won,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_lock($1)").bind(key(name)).fetch_one(&mut connection).await?;
        Ok(won.then_some(Leadership { connection: Some(connection) }))
    }
}
