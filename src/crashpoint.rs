//! Named crash points for the kill-and-restart tests.
//!
//! With `FRONTDESK_CRASH_AT=<point>[:<n>]` in the environment, the process
//! kills itself with SIGKILL the n-th time (default: first) it passes that
//! point. Without the variable a crash point costs one relaxed atomic load.
//! SIGKILL, not a panic or exit: nothing gets to clean up, exactly as when an
//! operator's `kill -9` or the OOM killer strikes.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    OnceLock,
};

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static PASSED: AtomicU64 = AtomicU64::new(0);

fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let spec = std::env::var("FRONTDESK_CRASH_AT").ok()?;
        let (point, n) = match spec.split_once(':') {
            Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some((point, n))
    })
}

/// Kills the process here if the environment asks for it.
pub fn hit(point: &str) {
    if let Some((p, n)) = target() {
        if p == point && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            eprintln!("crash point {point} reached: killing the process");
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}
