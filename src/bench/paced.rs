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
    /// How late tokio's timer woke a customer whose turn came due while it
    /// was idle: the load generator's own error, which the latencies above
    /// include. tokio rounds a deadline up to its next millisecond tick and
    /// fires timers only between tasks (on an idle runtime 1.1 ms late at
    /// the median, 2.0 ms at p99; 2,000 sleeps of 1-4 ms, 2026-12-06).
    pub(super) wake_late_p99_ms: f64,
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
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = Vec::new();
    for i in 0..n {
        let (engine, totals, hist, channel) = (engine.clone(), totals.clone(), hist.clone(), channel.to_string());
        let offset = every.mul_f64(i as f64 / n as f64);
        let mut customer = customers(i);
        tasks.push(tokio::spawn(async move {
            let who = format!("c{i}");
            let mut next = customer.first();
            let mut arrivals = Arrivals::new(i as u64, start + offset, every);
            loop {
                // A turn that comes due while the last one is still running
                // is sent as soon as it is answered (and its latency counts
                // from when it was due).
                let scheduled = arrivals.next();
                if scheduled >= end {
                    break;
                }
                let mut woke_late = None;
                if scheduled > Instant::now() {
                    tokio::time::sleep_until(scheduled.into()).await;
                    woke_late = Some(scheduled.elapsed().as_micros() as u64);
                }
                // Latency from when the turn was due, so a backlog shows;
                // recorded with the wake-up's lateness under one lock.
                let record = || {
                    let us = scheduled.elapsed().as_micros() as u64;
                    let second = scheduled.duration_since(start).as_secs() as usize;
                    hist.lock().expect("histogram").record(second, us, woke_late);
                };
                next = match drive(&engine, &channel, &who, &next, record).await {
                    Ok(r) => {
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
    for t in tasks {
        t.await?;
    }
    totals.check()?;
    let h = hist.lock().expect("histogram");
    Ok(Paced {
        turns_per_sec: totals.turns.load(Ordering::Relaxed) as f64 / duration.as_secs_f64(),
        p50_ms: p_ms(&h.all, 0.5),
        p99_ms: p_ms(&h.all, 0.99),
        p99_ms_by_second: h.by_second.iter().map(|s| round(p_ms(s, 0.99))).collect(),
        wake_late_p99_ms: round(p_ms(&h.wake_late, 0.99)),
    })
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
