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

/// Run and run-queue times, in ns, of each thread (by tid) with its kind.
///
/// Kept per thread, not summed by kind: a thread that ended between two
/// snapshots would otherwise take its whole time out of its kind's sum,
/// and the kind's difference would fall (to 0, say, for the sqlx threads
/// of a connection closed meanwhile) although the others kept running.
#[derive(Default)]
pub(super) struct ThreadTimes(BTreeMap<u64, (&'static str, u64, u64)>);

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
    /// from this one, so what it ran after that snapshot is not counted.
    pub(super) fn now() -> ThreadTimes {
        let mut times = ThreadTimes::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return times };
        for task in tasks.flatten() {
            let path = task.path();
            let Some(tid) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()) else {
                continue;
            };
            let (Ok(comm), Ok(stat)) =
                (std::fs::read_to_string(path.join("comm")), std::fs::read_to_string(path.join("schedstat")))
            else {
                continue;
            };
            let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
            let (ran, waited) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
            times.0.insert(tid, (kind(comm.trim()), ran, waited));
        }
        times
    }

    /// These times with the threads of `kind` taken from `other` (a
    /// snapshot that such a thread took before it ended).
    pub(super) fn with(mut self, kind: &'static str, other: &ThreadTimes) -> ThreadTimes {
        for (tid, times) in other.0.iter().filter(|(_, t)| t.0 == kind) {
            self.0.insert(*tid, *times);
        }
        self
    }

    /// Per kind, µs run and µs waited per `turns` since `before`: each
    /// thread's own difference, a thread new since `before` (or a tid the
    /// kernel gave to a new thread) counted from its start.
    pub(super) fn per_turn_since(&self, before: &ThreadTimes, turns: u64) -> BTreeMap<&'static str, (f64, f64)> {
        let per = |ns: u64| super::engine::round(ns as f64 / 1000.0 / turns.max(1) as f64);
        let mut sums: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for (tid, &(kind, ran, waited)) in &self.0 {
            let (ran0, waited0) = match before.0.get(tid) {
                Some(&(kind0, ran0, waited0)) if kind0 == kind && ran0 <= ran && waited0 <= waited => (ran0, waited0),
                _ => (0, 0),
            };
            let sum = sums.entry(kind).or_default();
            sum.0 += ran - ran0;
            sum.1 += waited - waited0;
        }
        sums.into_iter().map(|(kind, (ran, waited))| (kind, (per(ran), per(waited)))).collect()
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

    fn spin(micros: f64) {
        let cpu = || {
            let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime only writes the struct it is given.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
            t.tv_sec as f64 * 1e6 + t.tv_nsec as f64 / 1e3
        };
        let start = cpu();
        while cpu() - start < micros {
            std::hint::black_box(0u64);
        }
    }

    /// A thread of a kind that ends between two snapshots does not take
    /// its time out of the others of its kind (summed by kind, the kind's
    /// difference fell to 0 here).
    #[test]
    fn a_thread_that_ended_does_not_hide_the_others_of_its_kind() {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
        let ended = std::thread::Builder::new()
            .name("sqlx-sqlite-old".into())
            .spawn(move || {
                spin(30_000.0);
                started_tx.send(()).unwrap();
                end_rx.recv().unwrap();
            })
            .unwrap();
        started_rx.recv().unwrap();
        let before = ThreadTimes::now();
        end_tx.send(()).unwrap();
        ended.join().unwrap();
        let (ran, _) = std::thread::Builder::new()
            .name("sqlx-sqlite-new".into())
            .spawn(move || {
                spin(20_000.0);
                ThreadTimes::now().per_turn_since(&before, 1)["sqlx"]
            })
            .unwrap()
            .join()
            .unwrap();
        // At least what the new thread spun; more if other tests' store
        // connections (sqlx threads too) ran meanwhile.
        assert!(ran >= 15_000.0, "counted {ran} µs of the 20,000 µs the new thread spun");
    }

    /// A thread that spins shows up with its own run time: as much as its
    /// own CPU clock says it used (whatever else the machine runs).
    #[test]
    fn a_busy_thread_is_counted_under_its_kind() {
        assert!(!ThreadTimes::now().0.is_empty(), "no /proc/self/task/*/schedstat on this kernel");
        std::thread::Builder::new()
            .name("bench-pacer".into())
            .spawn(|| {
                let before = ThreadTimes::now();
                spin(20_000.0);
                let (ran, _) = ThreadTimes::now().per_turn_since(&before, 1)["pacer"];
                assert!((15_000.0..60_000.0).contains(&ran), "counted {ran} µs of 20,000 µs spun");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
