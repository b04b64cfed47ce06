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
        // A configured folder that cannot serve stops here, before any
        // customer meets a flow that is not there.
        crate::engine::flows::FlowsSource::of(&settings.engine.flows_dir)
            .check_serves(&settings.engine.router_flow)
            .map_err(anyhow::Error::msg)?;
        crate::mail::templates::Templates::of(&settings.mail.templates_dir)
            .check_serves()
            .map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
        let url = settings.database_url(&data_dir);
        let store = Store::open_with(&url, settings.database.store_options()).await?;
        tracing::info!(database = %crate::config::redact_url(&url), backend = store.backend(), "store ready");
        let settings = Arc::new(settings);
        let engine = Engine::builder(store.clone(), settings.clone()).effects(effects(&store, &settings)).build();
        Ok(App { settings, store, engine, data_dir })
    }

    /// Starts the background work every process that talks to customers
    /// needs: sending queued mail, and running due follow-ups. Both stop when
    /// `stop` changes.
    pub fn spawn_mail_and_followups(
        &self,
        outbox_every: std::time::Duration,
        followups_every: std::time::Duration,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let outbox = self.outbox()?;
        if let Some(dir) = &outbox.spool {
            tracing::info!(spool = %dir.display(), "no SMTP server configured: mails are written as .eml files");
        }
        let (outbox, clock) = (Arc::new(outbox), self.engine.clock().clone());
        let mail = tokio::spawn(crate::background::every("outbox", outbox_every, stop.clone(), move || {
            let (outbox, now) = (outbox.clone(), clock.now_ms());
            async move { outbox.run_once(now).await }
        }));
        let (store, settings, clock) = (self.store.clone(), self.settings.clone(), self.engine.clock().clone());
        let followups =
            tokio::spawn(crate::background::every("follow-ups", followups_every, stop.clone(), move || {
                let (store, settings, now) = (store.clone(), settings.clone(), clock.now_ms());
                async move {
                    crate::account::limits::prune(&store, &settings, now).await?;
                    let expired = crate::account::requests::expire_due(&store, &settings, now).await?;
                    Ok(crate::account::followup::run_due(&store, &settings, now).await? + expired)
                }
            }));
        Ok(vec![mail, followups])
    }

    /// The outbox worker for this app's store and data folder.
    pub fn outbox(&self) -> anyhow::Result<crate::mail::outbox::Outbox> {
        crate::mail::outbox::Outbox::new(self.store.clone(), &self.settings.mail, &self.data_dir)
    }
}

/// The async effects flows can call.
pub fn effects(store: &Store, settings: &Arc<Settings>) -> crate::engine::Effects {
    let mut effects = crate::engine::Effects::new();
    crate::account::register(&mut effects, crate::directory::Directory::new(store.clone()), settings.clone());
    effects
}

/// The same effects by name only, for checking flows without a store.
pub fn declared_effects() -> crate::engine::Effects {
    let mut effects = crate::engine::Effects::new();
    for (name, arity) in crate::account::EFFECTS {
        effects.declare(name, *arity);
    }
    effects
}
