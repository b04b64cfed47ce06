//! Where a mail's time goes, stage by stage: busy time summed over every
//! mail the channel handled (mails are handled many at a time, so the sum
//! of a stage can exceed the wall-clock time; divided by the mails it is the
//! cost of one mail in that stage). A few atomic adds per mail: cheap
//! enough to keep on in production, and what `bench email` prints.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// The stages of an inbound mail, in the order it passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the session: connecting, logging in, selecting the mailbox
    /// (where the server syncs it: Dovecot takes every mail delivered since
    /// the last session into its index, and out of Maildir's `new/`).
    /// Once per session, before any mail.
    Connect,
    /// `UID FETCH` round trips to the IMAP server (per batch of mails).
    Fetch,
    /// Parsing the raw mail (MIME, charsets, quotes).
    Parse,
    /// Before the turn: seen before?, the sender's authentication, whether
    /// the address is on record, the daily caps taken.
    Checks,
    /// The turn: the flow, its effects and its commit (with the answer
    /// queued in the outbox in the same transaction).
    Turn,
    /// Rendering the turn's replies into the answer mail for the outbox
    /// (part of [`Stage::Turn`]'s time, shown on its own).
    Answer,
    /// Marking handled mail on the server: `UID MOVE` to the processed
    /// folder (or COPY + EXPUNGE, or a `\Seen` flag), per batch.
    FlagMove,
}

impl Stage {
    pub const ALL: [Stage; 7] =
        [Stage::Connect, Stage::Fetch, Stage::Parse, Stage::Checks, Stage::Turn, Stage::Answer, Stage::FlagMove];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Fetch => "fetch",
            Stage::Parse => "parse",
            Stage::Checks => "checks",
            Stage::Turn => "turn",
            Stage::Answer => "answer",
            Stage::FlagMove => "flag_move",
        }
    }
}

/// Busy time and passes per stage.
#[derive(Debug, Default)]
pub struct Stages {
    nanos: [AtomicU64; Stage::ALL.len()],
    passes: [AtomicU64; Stage::ALL.len()],
    /// Mails whose handling ended with an outcome (recorded, or found
    /// handled before): what a bench waits for without asking the store.
    finished: AtomicU64,
}

impl Stages {
    pub fn add(&self, stage: Stage, took: Duration) {
        let i = stage as usize;
        self.nanos[i].fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.passes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// One more mail handled to an outcome.
    pub fn finish(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Mails handled to an outcome so far.
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    /// Runs `f`, adding its time to `stage`.
    pub fn time<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.add(stage, started.elapsed());
        out
    }

    /// Like [`Stages::time`] for a future.
    pub async fn time_async<T>(&self, stage: Stage, f: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let out = f.await;
        self.add(stage, started.elapsed());
        out
    }

    /// Busy time so far of `stage`, and how many times it ran.
    pub fn total(&self, stage: Stage) -> (Duration, u64) {
        let i = stage as usize;
        (Duration::from_nanos(self.nanos[i].load(Ordering::Relaxed)), self.passes[i].load(Ordering::Relaxed))
    }

    /// [`Stages::total`] of every stage.
    pub fn totals(&self) -> Vec<(Stage, Duration, u64)> {
        Stage::ALL
            .iter()
            .map(|&s| {
                let (busy, passes) = self.total(s);
                (s, busy, passes)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_add_up_by_stage() {
        let stages = Stages::default();
        stages.add(Stage::Parse, Duration::from_micros(5));
        stages.add(Stage::Parse, Duration::from_micros(7));
        stages.time(Stage::FlagMove, || ());
        let totals = stages.totals();
        assert_eq!(totals[Stage::Parse as usize], (Stage::Parse, Duration::from_micros(12), 2));
        assert_eq!(totals[Stage::FlagMove as usize].2, 1);
        assert_eq!(totals[Stage::Fetch as usize], (Stage::Fetch, Duration::ZERO, 0));
        stages.finish();
        stages.finish();
        assert_eq!(stages.finished(), 2);
        let names: std::collections::HashSet<_> = Stage::ALL.map(Stage::name).into_iter().collect();
        assert_eq!(names.len(), Stage::ALL.len(), "every stage has a name of its own");
    }
}
