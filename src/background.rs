//! Periodic background work (idle expiry, the mail outbox, follow-ups): run
//! a round every so often until told to stop; a failed round is logged and
//! simply tried again at the next tick. And work that one instance of a
//! shared deployment does alone ([`leading`]).

use std::{future::Future, time::Duration};

use tokio::sync::watch;

use crate::store::Store;

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

/// How often an instance standing by asks for the lead of work one instance
/// does alone (the Discord gateway, a mailbox's reader), and a leader checks
/// it still holds it.
pub const LEAD_CHECK: Duration = Duration::from_secs(10);

/// Runs `work` while this instance leads `name` among the instances sharing
/// the store ([`Store::try_lead`]): stands by otherwise, asking again every
/// `check`; a leader checks as often that it still holds the lead, and
/// stops its work when it does not (another instance may take over). `work`
/// gets a receiver that changes when it must stop. Returns when `stop`
/// changes, or with what `work` returned when it ended by itself.
pub async fn leading<F, Fut>(
    store: &Store,
    name: &str,
    check: Duration,
    mut stop: watch::Receiver<bool>,
    mut work: F,
) -> anyhow::Result<()>
where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut standing_by = false;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        match store.try_lead(name).await {
            Ok(Some(mut lead)) => {
                standing_by = false;
                tracing::info!(work = name, "leading");
                crate::metrics::get().leads(name, true);
                let (halt, halted) = watch::channel(false);
                let job = work(halted);
                tokio::pin!(job);
                let mut tick = tokio::time::interval(check);
                tick.tick().await;
                let lost = loop {
                    tokio::select! {
                        ended = &mut job => {
                            crate::metrics::get().leads(name, false);
                            return ended;
                        }
                        _ = stop.changed() => break false,
                        _ = tick.tick() => if !lead.holds().await { break true },
                    }
                };
                let _ = halt.send(true);
                let ended = job.await;
                crate::metrics::get().leads(name, false);
                if !lost {
                    return ended;
                }
                tracing::warn!(work = name, "lost the lead (its database connection); standing by");
                if let Err(e) = ended {
                    tracing::warn!(work = name, "it ended with: {e:#}");
                }
            }
            Ok(None) if !standing_by => {
                standing_by = true;
                crate::metrics::get().leads(name, false);
                tracing::info!(work = name, "another instance leads; standing by");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(work = name, "asking for the lead failed; will ask again: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(check) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}
