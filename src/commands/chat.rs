//! `frontdesk chat`: talk to frontdesk in this terminal, through the real
//! engine and store (the print-then-acknowledge delivery model).

use std::time::Duration;

use crate::{app::App, cli::ChatArgs};

pub async fn run(app: App, args: ChatArgs) -> anyhow::Result<i32> {
    let who = args.identity.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "terminal".to_string());
    // Mail queued by the conversation goes out while it runs, and whatever
    // is left when it ends goes out before the process exits.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = app.spawn_mail_and_followups(Duration::from_millis(200), Duration::from_secs(1), &stopped)?;
    let result = crate::channels::terminal::chat(&app.engine, &who).await;
    let _ = stop.send(true);
    for w in workers {
        let _ = w.await;
    }
    app.store.flush().await;
    let flushed = app.outbox()?.run_once(app.engine.clock().now_ms()).await;
    app.store.close().await;
    flushed?;
    result.map(|_| 0)
}
