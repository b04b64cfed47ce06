//! Periodic background work (idle expiry, the mail outbox, follow-ups): run
//! a round every so often until told to stop; a failed round is logged and
//! simply tried again at the next tick. And work that one instance of a
//! shared deployment does alone ([`leading`]).

use std::{future::Future, time::Duration};

use tokio::sync::watch;

use crate::store::Store;

/// How long a round in progress may go on once work is told to stop.
pub const ROUND_GRACE: Duration = Duration::from_secs(5);

/// Runs `round` every `period` until `stop` changes. `what` names the work
/// in the logs; a round returns how many things it did. A round in progress
/// when `stop` changes gets [`ROUND_GRACE`] to finish.
pub async fn every<F, Fut>(what: &'static str, period: Duration, stop: watch::Receiver<bool>, round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    every_within(what, period, ROUND_GRACE, stop, round).await
}

/// [`every`], with `grace` for the round in progress at a stop. After it the
/// round is dropped where it waits: every piece of background work already
/// survives a crash at any point (a mail being sent keeps its claim one
/// lease, and goes out from the next start), and a stop must not wait for a
/// dead peer's time-out (an SMTP server that accepts and never answers
/// held `serve`'s shutdown for 107 s).
async fn every_within<F, Fut>(
    what: &'static str,
    period: Duration,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let work = round();
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => log_round(what, done),
            _ = stop.changed() => {
                match tokio::time::timeout(grace, &mut work).await {
                    Ok(done) => log_round(what, done),
                    Err(_) => tracing::warn!(work = what, ?grace, "stopping in the middle of a round; what it left is done at the next start"),
                }
                return;
            }
        }
    }
}

fn log_round(what: &'static str, done: anyhow::Result<usize>) {
    match done {
        Ok(0) => {}
        Ok(n) => tracing::info!(work = what, done = n, "background round"),
        Err(e) => tracing::warn!(work = what, "background round failed; will retry: {e:#}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_millis(300);

    /// A round stuck on a dead peer (an SMTP server that accepts and never
    /// answers) must not hold a shutdown for its whole time-out.
    #[tokio::test]
    async fn a_stop_ends_a_stuck_round_after_the_grace() {
        let (stop_tx, stop) = watch::channel(false);
        let started = tokio::time::Instant::now();
        let work = tokio::spawn(every_within("stuck", Duration::from_secs(1), GRACE, stop, || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(1)
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop_tx.send(true).unwrap();
        work.await.unwrap();
        let took = started.elapsed();
        assert!(took >= GRACE, "the round had its grace: {took:?}");
        assert!(took < Duration::from_secs(60), "stopped after the grace, not the round's hour: {took:?}");
    }

    /// A round that ends within the grace is not cut short.
    #[tokio::test]
    async fn a_stop_lets_a_short_round_finish() {
        let (stop_tx, stop) = watch::channel(false);
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = finished.clone();
        let work = tokio::spawn(every_within("short", Duration::from_secs(1), GRACE, stop, move || {
            let flag = flag.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(1)
            }
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop_tx.send(true).unwrap();
        work.await.unwrap();
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst), "the round in progress finished");
    }
}
