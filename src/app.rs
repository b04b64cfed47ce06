//! Wiring: settings, store and engine, as every command needs them.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context as _;

use crate::{config::Settings, engine::Engine, store::Store};

pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub engine: Engine,
    pub data_dir: PathBuf,
}

impl App {
    /// Opens the store (creating the data folder and applying migrations)
    /// and builds the engine.
    pub async fn open(settings: Settings, data_dir: PathBuf) -> anyhow::Result<App> {
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
        let url = settings.database_url(&data_dir);
        let store = Store::open(&url, settings.database.max_connections).await?;
        tracing::info!(database = %crate::config::redact_url(&url), backend = store.backend(), "store ready");
        let settings = Arc::new(settings);
        let engine = Engine::builder(store.clone(), settings.clone()).effects(effects()).build();
        Ok(App { settings, store, engine, data_dir })
    }
}

/// The async effects flows can call. The directory, mail and account effects
/// register here.
pub fn effects() -> crate::engine::Effects {
    crate::engine::Effects::new()
}
