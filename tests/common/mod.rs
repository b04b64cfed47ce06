//! Shared test support: a fresh database per test on each backend, and the
//! repository's settings and flows.
#![allow(dead_code)]

use std::{path::PathBuf, sync::Arc};

use frontdesk::{
    config::Settings,
    engine::{Engine, Inbound, TurnReply},
    store::Store,
};

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that lives as long as the test: a temp folder for SQLite, a
/// freshly created database for PostgreSQL (dropped at the end).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb { url: Store::sqlite_url(dir.path()), _dir: Some(dir), pg_name: None }
    }

    /// A fresh PostgreSQL database. A server that cannot be reached fails
    /// the test: the PostgreSQL side of a test never passes by not running.
    pub async fn postgres() -> TestDb {
        use sqlx::Connection;
        let admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {PG_ADMIN_URL}: {e}. The PostgreSQL side of the store tests needs \
                 it (trust auth on loopback); `.ci/run` starts it."
            )
        });
        let mut admin = admin;
        let name = format!("frontdesk_test_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
        admin.close().await.ok();
        TestDb { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), _dir: None, pg_name: Some(name) }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop from a plain thread: the test's runtime may be shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::PgConnection::connect(PG_ADMIN_URL).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
                    }
                });
            })
            .join();
        }
    }
}

/// frontdesk's debug logs, captured with the test's output: a test that
/// fails shows what its workers did (libtest prints captured output only
/// for failures, and threads the test starts inherit its capture).
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("frontdesk=debug"))
        .with_ansi(false)
        .with_test_writer()
        .try_init();
}

pub fn repo_path(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The embedded defaults, with the repository's flows folder.
pub fn settings() -> Settings {
    let mut s = Settings::load_from(None, &[]).expect("default settings");
    s.engine.flows_dir = repo_path("flows").display().to_string();
    s
}

pub fn settings_with_flows(dir: &std::path::Path) -> Arc<Settings> {
    let mut s = settings();
    s.engine.flows_dir = dir.display().to_string();
    Arc::new(s)
}

pub fn msg(who: &str, text: &str) -> Inbound {
    Inbound::new("test", who, who, text)
}

/// Every line a reply shows, as the terminal renders it.
pub fn lines(reply: &TurnReply) -> Vec<String> {
    reply.messages.iter().flat_map(|d| frontdesk::channels::terminal::render(&d.message)).collect()
}

/// `who` says `text` in their own conversation and reads the answer.
pub async fn say(engine: &Engine, who: &str, text: &str) -> Vec<String> {
    say_in(engine, who, who, text).await
}

/// `sender` says `text` in the conversation `key` (one identity may have
/// several) and reads the answer. `{code}` types the code of the latest
/// verification mail, as a customer reading their mailbox would.
pub async fn say_in(engine: &Engine, key: &str, sender: &str, text: &str) -> Vec<String> {
    let typed = if text.contains("{code}") {
        let code = frontdesk::transcript::latest_email_code(engine.store()).await.expect("outbox");
        text.replace("{code}", &code.expect("a verification code was mailed"))
    } else {
        text.to_string()
    };
    let reply = engine.handle(Inbound::new("test", key, sender, typed)).await.expect("turn");
    engine.delivered(&reply.messages).await.expect("ack");
    lines(&reply)
}

/// Runs a test body against SQLite and against PostgreSQL, each with its
/// own fresh database.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::TestDb::sqlite();
                ($body)(db.url.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::common::TestDb::postgres().await;
                ($body)(db.url.clone()).await;
            }
        }
    };
}
