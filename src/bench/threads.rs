//! Where a phase's CPU time went, by kind of thread, and how long each kind
//! waited for a core while it could have run.
//!
//! Why: on two cores the paced phase's tail is made of waiting, and the
//! process's CPU time alone cannot say whose. The kernel keeps, per thread,
//! the time it ran and the time it sat runnable in a run queue
//! (`/proc/self/task/<tid>/schedstat`, in ns); a thread that waits for a
//! core delays everything queued behind it, which for the store's writer is
//! every turn's commit.

use std::collections::BTreeMap;

/// Run and run-queue times, in ns, summed by kind of thread.
#[derive(Default)]
pub(super) struct ThreadTimes(BTreeMap<&'static str, (u64, u64)>);

/// The kind of thread a thread's name (`comm`, at most 15 bytes) says.
fn kind(comm: &str) -> &'static str {
    match comm {
        // The store's "frontdesk-writer", cut to 15 bytes.
        "frontdesk-write" => "writer",
        "bench-pacer" => "pacer",
        // The runtime's workers and its blocking pool (the background
        // checkpoints) share a name.
        c if c.starts_with("tokio-") => "runtime",
        c if c.starts_with("sqlx-sqlite") => "sqlx",
        _ => "other",
    }
}

impl ThreadTimes {
    /// This process's threads now; empty where the kernel keeps no such
    /// figures. A thread that ended since an earlier snapshot is missing
    /// from this one, so its share is understated.
    pub(super) fn now() -> ThreadTimes {
        let mut times = ThreadTimes::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return times };
        for task in tasks.flatten() {
            let path = task.path();
            let (Ok(comm), Ok(stat)) =
                (std::fs::read_to_string(path.join("comm")), std::fs::read_to_string(path.join("schedstat")))
            else {
                continue;
            };
            let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
            let (ran, waited) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
            let entry = times.0.entry(kind(comm.trim())).or_default();
            entry.0 += ran;
            entry.1 += waited;
        }
        times
    }

    /// These times with `kind`'s taken from `other` (a snapshot that thread
    /// took before it ended).
    pub(super) fn with(mut self, kind: &'static str, other: &ThreadTimes) -> ThreadTimes {
        if let Some(times) = other.0.get(kind) {
            self.0.insert(kind, *times);
        }
        self
    }

    /// Per kind, µs run and µs waited per `turns` since `before`.
    pub(super) fn per_turn_since(&self, before: &ThreadTimes, turns: u64) -> BTreeMap<&'static str, (f64, f64)> {
        let per = |ns: u64| super::engine::round(ns as f64 / 1000.0 / turns.max(1) as f64);
        self.0
            .iter()
            .map(|(kind, &(ran, waited))| {
                let (ran0, waited0) = before.0.get(kind).copied().unwrap_or_default();
                (*kind, (per(ran.saturating_sub(ran0)), per(waited.saturating_sub(waited0))))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_told_apart_by_name() {
        assert_eq!(kind("frontdesk-write"), "writer");
        assert_eq!(kind("tokio-runtime-w"), "runtime");
        assert_eq!(kind("bench-pacer"), "pacer");
        assert_eq!(kind("cargo"), "other");
    }

    /// A thread that spins shows up with its own run time: as much as its
    /// own CPU clock says it used (whatever else the machine runs).
    #[test]
    fn a_busy_thread_is_counted_under_its_kind() {
        assert!(!ThreadTimes::now().0.is_empty(), "no /proc/self/task/*/schedstat on this kernel");
        std::thread::Builder::new()
            .name("bench-pacer".into())
            .spawn(|| {
                let cpu = || {
                    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                    // SAFETY: clock_gettime only writes the struct it is given.
                    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
                    t.tv_sec as f64 * 1e6 + t.tv_nsec as f64 / 1e3
                };
                let before = ThreadTimes::now();
                let start = cpu();
                while cpu() - start < 20_000.0 {
                    std::hint::black_box(0u64);
                }
                let (ran, _) = ThreadTimes::now().per_turn_since(&before, 1)["pacer"];
                assert!((15_000.0..60_000.0).contains(&ran), "counted {ran} µs of 20,000 µs spun");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
