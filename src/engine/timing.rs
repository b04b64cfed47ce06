//! Where a slow turn's time went: its steps (loading the conversation,
//! each run of the script, each effect, the commit), logged when the turn
//! took longer than [`SLOW_TURN`].
//!
//! Why: a turn's latency is the sum of waits in places that each look
//! fast on their own (the writer's queue, a pool's, the runtime's). This
//! is what found that the recovery bench's p99 was reads waiting for a
//! pooled connection, not the reads nor the writer. Turn it on with
//! `RUST_LOG=frontdesk::engine::timing=debug`.

use std::{
    cell::RefCell,
    future::Future,
    time::{Duration, Instant},
};

/// A turn slower than this logs its steps.
pub const SLOW_TURN: Duration = Duration::from_millis(20);

tokio::task_local! {
    static STEPS: RefCell<Vec<(String, Duration)>>;
}

/// Runs a turn, collecting its steps; logs them if it was slow.
pub(super) async fn timed<T>(channel: &str, turn: impl Future<Output = T>) -> T {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return turn.await;
    }
    let started = Instant::now();
    let (out, steps) = STEPS
        .scope(RefCell::new(Vec::new()), async {
            let out = turn.await;
            (out, STEPS.with(RefCell::take))
        })
        .await;
    let took = started.elapsed();
    if took > SLOW_TURN {
        let steps: Vec<String> =
            steps.iter().map(|(step, d)| format!("{step}={:.1}ms", d.as_secs_f64() * 1e3)).collect();
        tracing::debug!(channel, millis = took.as_millis() as u64, steps = %steps.join(" "), "slow turn");
    }
    out
}

/// Times one step of the current turn (nothing outside [`timed`]).
pub(crate) async fn step<T>(name: impl Into<String>, f: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = f.await;
    let _ = STEPS.try_with(|steps| steps.borrow_mut().push((name.into(), started.elapsed())));
    out
}
