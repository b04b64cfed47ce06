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
    let flushed = last_mail(&app).await;
    app.store.close().await;
    flushed?;
    result.map(|_| 0)
}

/// Sends what is still queued, for as long as a background round gets at a
/// stop: an SMTP server that does not answer would hold the terminal for
/// the whole send time-out. What is not sent stays queued (a send cut off
/// keeps its claim for one lease) for the next `serve` or `chat`.
async fn last_mail(app: &App) -> anyhow::Result<()> {
    let grace = crate::background::ROUND_GRACE;
    match tokio::time::timeout(grace, app.outbox()?.run_once(app.engine.clock().now_ms())).await {
        Ok(sent) => sent.map(drop),
        Err(_) => {
            tracing::warn!(
                "mail still queued: the mail server did not answer within {grace:?}; \
                 it goes out the next time frontdesk runs (serve or chat)"
            );
            Ok(())
        }
    }
}
