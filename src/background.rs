//! Periodic background work (idle expiry, the mail outbox, follow-ups): run
//! a round every so often until told to stop; a failed round is logged and
//! simply tried again at the next tick.

use std::{future::Future, time::Duration};

use tokio::sync::watch;

/// Runs `round` every `period` until `stop` changes. `what` names the work
/// in the logs; a round returns how many things it did.
pub async fn every<F, Fut>(what: &'static str, period: Duration, mut stop: watch::Receiver<bool>, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => match round().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(work = what, done = n, "background round"),
                Err(e) => tracing::warn!(work = what, "background round failed; will retry: {e:#}"),
            },
            _ = stop.changed() => return,
        }
    }
}
