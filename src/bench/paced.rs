//! The paced phase of `bench engine`: an open loop in which the customers
//! together offer `--rate` turns/s, each at random intervals, and the
//! latency of every turn is counted from when it came due.

use std::{
    sync::{atomic::Ordering, Arc, Mutex},
    time::{Duration, Instant},
};

use super::engine::{drive, round, Customer, Totals};
use crate::engine::Engine;

/// What the paced phase measured.
pub(super) struct Paced {
    pub(super) turns_per_sec: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    /// The p99 of the turns that came due in each second of the phase: a
    /// tail from one stall, from a warm-up or from every second alike.
    pub(super) p99_ms_by_second: Vec<f64>,
    /// How late a customer whose turn came due while it was idle started
    /// it: the pacer's own lateness and the runtime's delay in running the
    /// woken task, which the latencies above include.
    pub(super) wake_late_p99_ms: f64,
    /// The CPU time the whole process spent per turn answered in the
    /// phase, in µs (engine, store writer and the load generator alike):
    /// on two cores, the tail latency rises with how much of them the
    /// offered rate keeps busy.
    pub(super) cpu_us_per_turn: f64,
    /// That CPU time by kind of thread, and the time each kind waited for
    /// a core while runnable, in µs per turn answered ([`super::threads`]).
    pub(super) threads: std::collections::BTreeMap<&'static str, (f64, f64)>,
}

/// Latencies of the paced phase, as a whole and per second of due time.
struct Latencies {
    all: hdrhistogram::Histogram<u64>,
    by_second: Vec<hdrhistogram::Histogram<u64>>,
    wake_late: hdrhistogram::Histogram<u64>,
}

fn histogram() -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    Ok(hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?)
}

impl Latencies {
    fn new(seconds: usize) -> anyhow::Result<Latencies> {
        Ok(Latencies {
            all: histogram()?,
            by_second: (0..seconds.max(1)).map(|_| histogram()).collect::<Result<_, _>>()?,
            wake_late: histogram()?,
        })
    }

    /// A turn due `second`s into the phase took `us`; its customer was
    /// woken `woke_late` µs after it came due, if it had been sleeping.
    fn record(&mut self, second: usize, us: u64, woke_late: Option<u64>) {
        if let Some(late) = woke_late {
            self.wake_late.record(late.max(1)).ok();
        }
        let us = us.max(1);
        self.all.record(us).ok();
        let last = self.by_second.len() - 1;
        self.by_second[second.min(last)].record(us).ok();
    }
}

fn p_ms(h: &hdrhistogram::Histogram<u64>, quantile: f64) -> f64 {
    h.value_at_quantile(quantile) as f64 / 1000.0
}

/// Open loop at `rate` turns/s by `n` customers for `duration`.
///
/// The turns come due on a thread of their own ([`pace`]), which hands each
/// to its customer's task as it falls due: as a message arriving on a socket
/// wakes the task that reads it. Why not a tokio timer per customer: tokio
/// rounds a deadline up to its next millisecond tick and fires timers only
/// between tasks, so under this load idle customers woke 2.2-3.8 ms late at
/// p99 (2026-12-07), an error of the load generator that every latency
/// counted from the due time carried.
pub(super) async fn paced<C: Customer>(
    engine: &Engine,
    channel: &str,
    customers: impl Fn(usize) -> C,
    n: usize,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<Paced> {
    let every = Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
    let hist = Arc::new(Mutex::new(Latencies::new(duration.as_secs_f64().ceil() as usize)?));
    let totals = Arc::new(Totals::default());
    // Every turn answered, in the window or after it (the CPU time counts both).
    let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cpu_before = super::cpu_time();
    let threads_before = super::threads::ThreadTimes::now();
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::new();
    let mut dues = Vec::with_capacity(n);
    for i in 0..n {
        let (engine, totals, hist, channel) = (engine.clone(), totals.clone(), hist.clone(), channel.to_string());
        let answered = answered.clone();
        let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let offset = every.mul_f64(i as f64 / n as f64);
        dues.push((Arrivals::new(i as u64, start + offset, every), due_tx));
        let mut customer = customers(i);
        tasks.push(tokio::spawn(async move {
            let who = format!("c{i}");
            let mut next = customer.first();
            loop {
                // A turn that came due while the last one was running is
                // sent as soon as it is answered (and its latency counts
                // from when it was due); one that comes due while the
                // customer is idle also says how late the customer woke.
                let (scheduled, woke_late) = match due_rx.try_recv() {
                    Ok(due) => (due, None),
                    Err(_) => match due_rx.recv().await {
                        Some(due) => (due, Some(due.elapsed().as_micros() as u64)),
                        None => break,
                    },
                };
                // Latency from when the turn was due, so a backlog shows;
                // recorded with the wake-up's lateness under one lock.
                let record = || {
                    let us = scheduled.elapsed().as_micros() as u64;
                    let second = scheduled.duration_since(start).as_secs() as usize;
                    hist.lock().expect("histogram").record(second, us, woke_late);
                };
                next = match drive(&engine, &channel, &who, &next, record).await {
                    Ok(r) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        // Sustained means answered within the window: a
                        // backlog that finishes late does not count.
                        if Instant::now() < end {
                            totals.turns.fetch_add(1, Ordering::Relaxed);
                        }
                        totals.answer(&mut customer, &r)
                    }
                    Err(_) => {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                        "start over".into()
                    }
                }
            }
        }));
    }
    // The pacer's thread ends before the customers do: it counts its own
    // times on its way out.
    let pacer = std::thread::Builder::new().name("bench-pacer".into()).spawn(move || {
        pace(dues, end);
        super::threads::ThreadTimes::now()
    })?;
    for t in tasks {
        t.await?;
    }
    let pacer_times = pacer.join().map_err(|_| anyhow::anyhow!("the pacer panicked"))?;
    let cpu = super::cpu_time().saturating_sub(cpu_before);
    let answered = answered.load(Ordering::Relaxed);
    let threads =
        super::threads::ThreadTimes::now().with("pacer", &pacer_times).per_turn_since(&threads_before, answered);
    totals.check()?;
    let h = hist.lock().expect("histogram");
    Ok(Paced {
        turns_per_sec: totals.turns.load(Ordering::Relaxed) as f64 / duration.as_secs_f64(),
        p50_ms: p_ms(&h.all, 0.5),
        p99_ms: p_ms(&h.all, 0.99),
        p99_ms_by_second: h.by_second.iter().map(|s| round(p_ms(s, 0.99))).collect(),
        wake_late_p99_ms: round(p_ms(&h.wake_late, 0.99)),
        cpu_us_per_turn: round(cpu.as_secs_f64() * 1e6 / (answered.max(1) as f64)),
        threads,
    })
}

/// Hands each customer its turns as they come due, earliest first, until
/// `end`; then hangs up, which ends each customer once it has caught up.
/// A plain thread sleeping to each due time wakes within tens of µs (the
/// kernel's timer slack), and it sends every turn already due at once.
fn pace(mut customers: Vec<(Arrivals, tokio::sync::mpsc::UnboundedSender<Instant>)>, end: Instant) {
    use std::{cmp::Reverse, collections::BinaryHeap};
    let mut queue: BinaryHeap<Reverse<(Instant, usize)>> =
        customers.iter_mut().enumerate().map(|(i, (arrivals, _))| Reverse((arrivals.next(), i))).collect();
    while let Some(Reverse((due, i))) = queue.pop() {
        if due >= end {
            // Every later turn is past the end too.
            break;
        }
        let wait = due.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let (arrivals, tx) = &mut customers[i];
        // A customer that is gone has failed its task; its join says why.
        let _ = tx.send(due);
        queue.push(Reverse((arrivals.next(), i)));
    }
}

/// One customer's turns coming due: a Poisson process of mean interval
/// `every` (exponential gaps), from its own seed so runs repeat.
struct Arrivals {
    rng: rand::rngs::StdRng,
    due: Instant,
    every: Duration,
}

impl Arrivals {
    fn new(seed: u64, first: Instant, every: Duration) -> Arrivals {
        use rand::SeedableRng as _;
        Arrivals { rng: rand::rngs::StdRng::seed_from_u64(seed), due: first, every }
    }

    /// When the next turn is due.
    fn next(&mut self) -> Instant {
        use rand::Rng as _;
        let due = self.due;
        // -ln(U), U in (0, 1]: an exponential gap of mean 1.
        let gap = -(1.0 - self.rng.gen::<f64>()).ln();
        self.due += self.every.mul_f64(gap);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each customer gets exactly its own arrivals before the end, in
    /// order, and then its channel closes (which ends its task).
    #[test]
    fn the_pacer_hands_each_customer_its_arrivals_until_the_end() {
        let start = Instant::now();
        let every = Duration::from_millis(2);
        let end = start + Duration::from_millis(40);
        let arrivals = |i: u64| Arrivals::new(i, start + every.mul_f64(i as f64 / 3.0), every);
        let mut receivers = Vec::new();
        let mut customers = Vec::new();
        for i in 0..3u64 {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            customers.push((arrivals(i), tx));
            receivers.push(rx);
        }
        pace(customers, end);
        for (i, mut rx) in receivers.into_iter().enumerate() {
            let mut expected = arrivals(i as u64);
            let mut got = Vec::new();
            while let Ok(due) = rx.try_recv() {
                got.push(due);
            }
            let want: Vec<Instant> = std::iter::from_fn(|| Some(expected.next())).take_while(|d| *d < end).collect();
            assert!(!want.is_empty());
            assert_eq!(got, want, "customer {i}");
            assert!(rx.is_closed(), "the pacer hung up on customer {i}");
        }
    }
}
