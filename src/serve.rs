//! `frontdesk serve`: channels and background work until SIGINT/SIGTERM.

use tokio::signal::unix::{signal, SignalKind};

use crate::app::App;

/// Companies in the demo directory seeded on the first start.
const DEMO_COMPANIES: u64 = 50;

/// On the embedded default (SQLite in the data folder) with an empty
/// directory, seeds a small demo directory so the assistant can be tried at
/// once. Never on PostgreSQL: a shared deployment gets its real directory.
async fn seed_demo_directory(app: &App) -> anyhow::Result<()> {
    if app.settings.database.url.is_some()
        || crate::directory::Directory::new(app.store.clone()).company_count().await? > 0
    {
        return Ok(());
    }
    let dir = app.data_dir.join("demo");
    let out = dir.clone();
    tokio::task::spawn_blocking(move || crate::directory::demo::generate(&out, DEMO_COMPANIES, 42, false)).await??;
    let report =
        crate::directory::import::import_dir(&app.store, &dir, &Default::default(), app.engine.clock().now_ms())
            .await?;
    anyhow::ensure!(!report.rejected(), "the demo directory did not import: {:?}", report.files);
    eprintln!(
        "seeded a demo directory of {DEMO_COMPANIES} companies ({} rows) from {}; look there for user names, e-mail addresses and serials to try",
        report.rows(),
        dir.display()
    );
    Ok(())
}

pub async fn serve(app: App) -> anyhow::Result<()> {
    // Handlers first: a signal that arrives while seeding is kept, and acted
    // on once the work in hand is done.
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    seed_demo_directory(&app).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let expiry = {
        let engine = app.engine.clone();
        let every = app.settings.engine.expiry_sweep_interval;
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        match engine.expire_idle().await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(closed = n, "closed idle conversations"),
                            Err(e) => tracing::warn!(error = %e, "idle expiry sweep failed; will retry"),
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        })
    };

    let outbox = {
        let worker = app.outbox()?;
        if let Some(dir) = &worker.spool {
            tracing::info!(spool = %dir.display(), "no SMTP server configured: mails are written as .eml files");
        }
        tokio::spawn(worker.run(app.engine.clock().clone(), std::time::Duration::from_secs(1), stop_rx.clone()))
    };

    let followups = tokio::spawn(crate::account::followup::run(
        app.store.clone(),
        app.settings.clone(),
        app.engine.clock().clone(),
        std::time::Duration::from_secs(5),
        stop_rx.clone(),
    ));

    tracing::info!(data = %app.data_dir.display(), backend = app.store.backend(), "frontdesk is serving; no chat channel is configured yet, so `frontdesk chat` is the way in");
    eprintln!(
        "frontdesk serving (data: {}, store: {}). Stop with Ctrl-C.",
        app.data_dir.display(),
        app.store.backend()
    );
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing work in progress");
    let _ = stop_tx.send(true);
    let _ = expiry.await;
    let _ = outbox.await;
    let _ = followups.await;
    // Every turn already queued is committed before the store closes.
    app.store.close().await;
    eprintln!("frontdesk stopped");
    Ok(())
}
