//! `frontdesk email ingest FILE.eml...`: raw mails from files, handled
//! exactly as if fetched over IMAP, one line per file on stdout.

use std::path::PathBuf;

use super::{EmailChannel, Source};
use crate::app::App;

/// Handles each file in order; returns the exit code: 0 when every file was
/// handled (answered, continued or deliberately skipped), 1 when one could
/// not be read or stored, or its flow failed.
pub async fn run(app: &App, files: &[PathBuf]) -> anyhow::Result<i32> {
    let channel = EmailChannel::new(app.engine.clone(), app.settings.clone());
    let mut failed = 0;
    for file in files {
        let raw = match tokio::fs::read(file).await {
            Ok(raw) => raw,
            Err(e) => {
                println!("{}: cannot read: {e}", file.display());
                failed += 1;
                continue;
            }
        };
        match channel.handle(&raw, &Source::Ingest).await {
            Ok(outcome) => {
                println!("{}: {outcome}", file.display());
                if matches!(outcome, super::Outcome::FlowFailed { .. }) {
                    failed += 1;
                }
            }
            Err(e) => {
                tracing::error!(file = %file.display(), "mail not handled: {e}");
                println!("{}: not handled, nothing was recorded: {e}", file.display());
                failed += 1;
            }
        }
    }
    // The answers were queued with their turns; without an SMTP server they
    // go to <data>/mail/outbox/ now, so they are there when this exits.
    app.store.flush().await;
    let outbox = app.outbox()?;
    let sent = outbox.run_once(app.engine.clock().now_ms()).await?;
    match &outbox.spool {
        Some(dir) => eprintln!("{sent} mail(s) written to {}", dir.display()),
        None => eprintln!("{sent} mail(s) sent over SMTP; any not yet sent stay queued for `frontdesk serve`"),
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
