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

/// Gives the memory the start-up freed (the demo directory's generation and
/// import, the flows' compilation) back to the system before `serve` waits
/// for customers. mimalloc returns freed pages lazily, when the thread that
/// freed them next allocates; the blocking threads that did the seeding then
/// sit idle, so without this `serve` idled 1–2 MB higher for good (46.8–47.2
/// against 48.1–48.5 MB, `VmRSS` 25 s after a first start).
fn return_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers; it may be called from any
    // thread at any time (mimalloc's own documentation).
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// How long requests in progress may finish once `serve` is told to stop.
const HTTP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn run(app: App, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    // Handlers first: a signal that arrives while seeding is kept, and acted
    // on once the work in hand is done.
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    seed_demo_directory(&app).await?;
    // Every flow compiled before the first customer (a flow that does not
    // compile is logged; the others serve).
    match app.engine.warm_up().await {
        Ok(n) => tracing::info!(flows = n, "flows compiled"),
        Err(e) => tracing::error!("a flow does not compile: {e}"),
    }
    return_freed_memory();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let engine = app.engine.clone();
    let mut workers = vec![tokio::spawn(crate::background::every(
        "idle expiry",
        app.settings.engine.expiry_sweep_interval,
        stop_rx.clone(),
        move || {
            let engine = engine.clone();
            async move { Ok(engine.expire_idle().await?) }
        },
    ))];
    workers.extend(app.spawn_mail_and_followups(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(5),
        &stop_rx,
    )?);

    let channels = crate::channels::configured(&app)?;
    // Routes of channels that platforms call (Slack's Events API).
    let routes: Vec<axum::Router> = channels.iter().filter_map(|c| c.routes()).collect();
    for channel in channels {
        let (name, delivery, stop) = (channel.name(), channel.delivery(), stop_rx.clone());
        tracing::info!(channel = name, ?delivery, "starting channel");
        workers.push(tokio::spawn(async move {
            // A channel reconnects by itself; it ends only when told to
            // stop, or when its platform refuses it for good.
            if let Err(e) = channel.run(stop).await {
                tracing::error!("the {name} channel stopped: {e:#}");
            }
        }));
    }

    let http_addr = listener.local_addr()?;
    workers.push(tokio::spawn(crate::http::serve(
        listener,
        crate::http::HttpState::new(&app),
        routes,
        stop_rx.clone(),
        HTTP_GRACE,
    )));

    tracing::info!(data = %app.data_dir.display(), backend = app.store.backend(), http = %http_addr, "frontdesk is serving");
    eprintln!(
        "frontdesk serving (data: {}, store: {}, http: http://{http_addr}, links: {}). Stop with Ctrl-C.",
        app.data_dir.display(),
        app.store.backend(),
        app.settings.http.public_url,
    );
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing work in progress");
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    // Every turn already queued is committed before the store closes.
    app.store.close().await;
    eprintln!("frontdesk stopped");
    Ok(())
}
