//! `frontdesk serve`: channels and background work until SIGINT/SIGTERM.

use tokio::signal::unix::{signal, SignalKind};

use crate::app::App;

pub async fn serve(app: App) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
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

    tracing::info!(data = %app.data_dir.display(), backend = app.store.backend(), "frontdesk is serving; no chat channel is configured yet, so `frontdesk chat` is the way in");
    eprintln!(
        "frontdesk serving (data: {}, store: {}). Stop with Ctrl-C.",
        app.data_dir.display(),
        app.store.backend()
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing work in progress");
    let _ = stop_tx.send(true);
    let _ = expiry.await;
    let _ = outbox.await;
    // Every turn already queued is committed before the store closes.
    app.store.close().await;
    eprintln!("frontdesk stopped");
    Ok(())
}
