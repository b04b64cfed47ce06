//! Channel adapters. Each turns its platform's events into
//! [`crate::engine::Inbound`] and renders [`crate::engine::Outbound`] for its
//! platform; the engine knows none of them.
//!
//! # The contract
//!
//! A channel `serve` runs is a [`Channel`]: it **starts** from the
//! configuration (its entry in [`SERVED`] returns it when configured),
//! **receives** its platform's events and runs a turn for each, **delivers**
//! the turn's answers, and **acknowledges** them to the store, by one of
//! three delivery models ([`DeliveryModel`]):
//!
//! - **Print, then acknowledge** (the terminal, `frontdesk chat`): answers are
//!   shown, then marked delivered; a crash between the two shows an answer
//!   again on restart, the one window a terminal cannot close.
//! - **Send, then acknowledge, with a sweep** (Discord, Slack): answers are sent
//!   after the turn commits and marked delivered once the platform took
//!   them; a sweep redelivers what is owed (a crash, an outage), and the
//!   platform's idempotency key (a nonce from the conversation and message
//!   seq) makes a resend harmless.
//! - **Reply sink** (e-mail): the answer is a mail queued in the turn's own
//!   transaction and already marked delivered; the outbox sends it, at least
//!   once, with a stable Message-ID.
//!
//! Adding a channel is one folder here plus one line in [`SERVED`].

pub mod discord;
pub mod email;
pub mod members;
pub mod pieces;
pub mod slack;
pub mod terminal;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::app::App;

/// How a channel hands answers over and tells the store they arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryModel {
    PrintThenAck,
    SendThenAckWithSweep,
    ReplySink,
}

/// A channel as `serve` runs it.
pub trait Channel: Send {
    /// Its name in the store, the audit log and the logs.
    fn name(&self) -> &'static str;
    fn delivery(&self) -> DeliveryModel;
    /// Routes the channel adds to `serve`'s HTTP server (a platform that
    /// calls us, as Slack's Events API does), with their state.
    fn routes(&self) -> Option<axum::Router> {
        None
    }
    /// Receives, answers and acknowledges until `stop` turns true. It
    /// reconnects by itself; an error ends it for good (a refused token).
    fn run(self: Box<Self>, stop: watch::Receiver<bool>) -> BoxFuture<'static, anyhow::Result<()>>;
}

/// A channel's entry: the channel when the configuration turns it on.
type Starter = fn(&App) -> anyhow::Result<Option<Box<dyn Channel>>>;

/// Every channel `serve` can run, in start order.
const SERVED: &[Starter] = &[email::served, discord::served, slack::served];

/// The channels this configuration turns on.
pub fn configured(app: &App) -> anyhow::Result<Vec<Box<dyn Channel>>> {
    let mut channels = Vec::new();
    for start in SERVED {
        channels.extend(start(app)?);
    }
    Ok(channels)
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_runs_the_mail_channel_on_the_embedded_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings::load_from(None, &[]).unwrap();
        let app = crate::app::App::open(settings, dir.path().to_path_buf()).await.unwrap();
        let channels = super::configured(&app).unwrap();
        let served: Vec<_> = channels.iter().map(|c| (c.name(), c.delivery())).collect();
        assert_eq!(served, [("email", super::DeliveryModel::ReplySink)], "Discord only when configured");
        app.store.close().await;
    }
}
