//! `frontdesk bench engine`: simulated customers driving the real flows
//! through the real engine and store.
//!
//! Three phases, all in one run so the figures are comparable:
//! 1. **saturation** (closed loop): every conversation sends its next answer
//!    as soon as the previous one is answered: the most turns/s we can do;
//! 2. **paced** (open loop): together the conversations offer `--rate`
//!    turns/s, each sending its turns at random intervals (exponentially
//!    distributed: the arrivals of many independent customers); latency
//!    p50/p99 is measured here, where it means something (a closed loop at
//!    saturation measures only its own queue). Not at a fixed interval:
//!    customers who all started within one interval would stay in step,
//!    every one of them at the same step of the procedure at the same time,
//!    and the load would come in waves of one kind of turn (the recovery's
//!    mail-sending step for a fifth of a second, then its cheap steps);
//!    that measured the waves, not the store;
//! 3. **floor**: bare store commits of rows shaped like the engine's (same
//!    journal size, same messages per turn, same acknowledgements) through
//!    the same batching writer, with no engine work.
//!
//! `overhead_ratio` = engine cost per turn / floor cost per write =
//! floor writes/s ÷ saturation turns/s.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use crate::{
    config::Settings,
    engine::{Engine, Inbound, Outbound, TurnReply},
    store::{ConversationRow, ConversationWrite, Direction, NewMessage, Status, Store, TurnCommit},
};

#[derive(Args, Debug, Clone)]
pub struct EngineBenchArgs {
    /// Store to measure (default: SQLite in a temporary folder). A PostgreSQL
    /// URL is used as it is; the bench's rows use their own channel names.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Concurrent conversations.
    #[arg(long, default_value_t = 1000)]
    pub conversations: usize,
    /// Offered load of the paced phase, turns/s.
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// Length of each phase. Ten seconds, not five: the first seconds of
    /// the floor, right after the paced phase, ran faster than the rest, so
    /// five-second phases put the recovery workload's overhead at 1.03–1.44
    /// over 17 runs (floor 21,900–28,400 writes/s) and ten-second ones at
    /// 1.03–1.22 over 8 (2026-12-07, one machine).
    #[arg(long, default_value = "10s")]
    pub duration: humantime::Duration,
    /// What the customers do: `chat` (router → self-help articles, no
    /// lookup, no mail) or `recovery` (the whole login recovery over a
    /// synthetic directory: a search, the contact list, a reset token and a
    /// mail each).
    #[arg(long, value_enum, default_value_t = Workload::Chat)]
    pub workload: Workload,
    /// Companies in the recovery workload's directory.
    #[arg(long, default_value_t = 100_000)]
    pub companies: u64,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Chat,
    Recovery,
}

/// A simulated customer: what it says first, and what it answers.
pub(super) trait Customer: Send + 'static {
    fn first(&mut self) -> String;
    /// The answer to a reply; an error when the flow went somewhere the
    /// bench does not expect (the run fails, naming it).
    fn next(&mut self, reply: &TurnReply) -> anyhow::Result<String>;
}

/// The chat workload's customer.
struct Chatting;

impl Customer for Chatting {
    fn first(&mut self) -> String {
        "hi".into()
    }

    fn next(&mut self, reply: &TurnReply) -> anyhow::Result<String> {
        Ok(answer(reply).to_string())
    }
}

/// The engine bench's own settings: for the recovery workload, limits no
/// customer of the run reaches (every use is still taken and counted).
pub fn engine_settings(args: &EngineBenchArgs) -> &'static [(&'static str, &'static str)] {
    match args.workload {
        Workload::Chat => &[],
        Workload::Recovery => &[
            ("limits.searches_per_identity", "1000000000/1h"),
            ("limits.searches_per_identifier", "1000000000/1h"),
            ("limits.recovery_mails_per_contact", "1000000000/1h"),
        ],
    }
}

/// What a simulated customer answers to whatever frontdesk asks. At the
/// router's menu it asks for the self-help articles: this benchmark measures
/// the engine and the conversation store, not directory lookups (which
/// `bench directory` measures) or their rate limits.
fn answer(reply: &TurnReply) -> &'static str {
    if reply.status.is_some_and(|s| !s.is_open()) {
        return "hi";
    }
    if reply.status == Some(Status::HandedOff) {
        return "cancel";
    }
    let prompt = reply.messages.iter().rev().find_map(|d| match &d.message {
        Outbound::Prompt { text, options, .. } => Some((text.as_str(), options.as_slice())),
        _ => None,
    });
    match prompt {
        Some((_, options)) if options.iter().any(|o| o == "Read self-help articles") => "Read self-help articles",
        Some((_, options)) if options == ["Yes", "No"] => "yes",
        Some((_, options)) if !options.is_empty() => "1",
        Some((text, _)) if text.contains("country") => "DE",
        Some((text, _)) if text.contains("e-mail") => "ann@example.com",
        Some((text, _)) if text.contains("phone") => "+49 30 901820",
        Some(_) => "hello",
        None => "hi",
    }
}

#[derive(Default)]
pub(super) struct Totals {
    pub(super) turns: AtomicU64,
    pub(super) errors: AtomicU64,
    /// The first answer a customer could not give (the flow went elsewhere).
    unexpected: std::sync::Mutex<Option<String>>,
}

impl Totals {
    /// The customer's answer to `reply`; when it has none, the error is
    /// kept and the customer starts over.
    pub(super) fn answer(&self, customer: &mut impl Customer, reply: &TurnReply) -> String {
        match customer.next(reply) {
            Ok(next) => next,
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.unexpected.lock().expect("unexpected").get_or_insert_with(|| format!("{e:#}"));
                "start over".into()
            }
        }
    }

    pub(super) fn check(&self) -> anyhow::Result<()> {
        let errors = self.errors.load(Ordering::Relaxed);
        let first = self.unexpected.lock().expect("unexpected").clone().unwrap_or_default();
        anyhow::ensure!(errors == 0, "{errors} turns failed; the first: {first}");
        Ok(())
    }
}

/// One turn and its delivery acknowledgement; the turn's latency is taken
/// when the reply is ready (`on_reply`), before the acknowledgement.
pub(super) async fn drive(
    engine: &Engine,
    channel: &str,
    who: &str,
    text: &str,
    on_reply: impl FnOnce(),
) -> anyhow::Result<TurnReply> {
    let reply = engine.handle(Inbound::new(channel, who, who, text)).await?;
    on_reply();
    engine.delivered(&reply.messages).await?;
    Ok(reply)
}

/// Closed loop: returns turns/s.
async fn saturation<C: Customer>(
    engine: &Engine,
    channel: &str,
    customers: impl Fn(usize) -> C,
    n: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (engine, totals, stop, channel) = (engine.clone(), totals.clone(), stop.clone(), channel.to_string());
        let mut customer = customers(i);
        tasks.push(tokio::spawn(async move {
            let who = format!("c{i}");
            let mut next = customer.first();
            while !stop.load(Ordering::Relaxed) {
                next = match drive(&engine, &channel, &who, &next, || ()).await {
                    Ok(r) => {
                        totals.turns.fetch_add(1, Ordering::Relaxed);
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
    let rate = per_second(duration, start, &stop, &totals.turns, tasks).await?;
    totals.check()?;
    Ok(rate)
}

/// The shape of the engine's writes in the saturation phase, which the
/// floor reproduces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) journal_bytes: usize,
    pub(super) prompt_bytes: usize,
    pub(super) message_bytes: usize,
    pub(super) messages_per_turn: f64,
    /// Turns per conversation: one insert, then updates, the last closing it.
    pub(super) turns_per_conversation: f64,
}

impl Shape {
    /// A waiting conversation of this shape, as a floor writes it.
    pub(super) fn row(&self, channel: &str, who: &str, flow: &str, id: i64, now: i64) -> ConversationRow {
        ConversationRow {
            id,
            channel: channel.into(),
            conv_key: who.into(),
            sender: who.into(),
            verified: None,
            started_by: None,
            flow: flow.into(),
            flow_hash: "0".repeat(32),
            journal: "x".repeat(self.journal_bytes),
            status: Status::Waiting,
            holder: Default::default(),
            prompt: Some("p".repeat(self.prompt_bytes)),
            end_reason: None,
            next_seq: 0,
            expires_at: Some(now + 86_400_000),
            wake_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A whole number averaging `mean` (2.25 → 2 three times in four, else 3).
pub(super) fn whole(mean: f64) -> usize {
    mean.floor() as usize + usize::from(rand::random::<f64>() < mean.fract())
}

/// Bare writes shaped like the engine's: returns writes/s.
async fn floor(store: &Store, channel: &str, n: usize, shape: Shape, duration: Duration) -> anyhow::Result<f64> {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (store, count, stop, channel) = (store.clone(), count.clone(), stop.clone(), channel.to_string());
        tasks.push(tokio::spawn(async move {
            let now = 1_700_000_000_000i64;
            let mut row = shape.row(&channel, &format!("f{i}"), "self_help", 0, now);
            row.expires_at = Some(now);
            let mut left_in_conversation = 0;
            while !stop.load(Ordering::Relaxed) {
                let insert = left_in_conversation == 0;
                if insert {
                    left_in_conversation = whole(shape.turns_per_conversation).max(1);
                    row.id = crate::store::new_conversation_id(clock_ms());
                    row.version = 1;
                    row.next_seq = 0;
                }
                left_in_conversation -= 1;
                let status_before = row.status;
                row.status = if left_in_conversation == 0 { Status::Done } else { Status::Waiting };
                let mut messages = Vec::new();
                let mut acks = Vec::new();
                for k in 0..whole(shape.messages_per_turn) {
                    let out = k > 0;
                    messages.push(NewMessage {
                        seq: row.next_seq,
                        direction: if out { Direction::Out } else { Direction::In },
                        external_id: None,
                        body: "m".repeat(shape.message_bytes),
                        created_at: now,
                        delivered_at: None,
                    });
                    if out {
                        acks.push((row.id, row.next_seq));
                    }
                    row.next_seq += 1;
                }
                let conversation = if insert {
                    ConversationWrite::Insert(row.clone())
                } else {
                    ConversationWrite::Update {
                        row: row.clone(),
                        expected_version: row.version - 1,
                        expected_status: status_before,
                    }
                };
                if store.commit(TurnCommit { conversation, messages, writes: Vec::new() }).await.is_ok() {
                    store.ack_delivered(acks, now).await.ok();
                    count.fetch_add(1, Ordering::Relaxed);
                }
                row.version += 1;
            }
        }));
    }
    per_second(duration, start, &stop, &count, tasks).await
}

/// Lets `tasks` (started at `start`) run for `duration`, tells them to
/// `stop` and waits for them: what they `count`ed per second until then.
pub(super) async fn per_second(
    duration: Duration,
    start: Instant,
    stop: &AtomicBool,
    count: &AtomicU64,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<f64> {
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let counted = count.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for t in tasks {
        t.await?;
    }
    Ok(counted as f64 / elapsed)
}

/// Runs the engine bench; `config` is the configuration file it was loaded
/// from, which the recovery workload's loading processes get too.
pub async fn engine(settings: Settings, config: Option<&Path>, args: EngineBenchArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for meaningful figures");
    }
    let tmp = tempfile::tempdir()?;
    let url = args.database_url.clone().unwrap_or_else(|| Store::sqlite_url(tmp.path()));
    let store = Store::open_with(&url, settings.database.store_options()).await.context("opening the bench store")?;
    let settings = Arc::new(settings);
    let engine =
        Engine::builder(store.clone(), settings.clone()).effects(crate::app::effects(&store, &settings)).build();
    let run = format!("{:08x}", rand::random::<u32>());
    let duration: Duration = args.duration.into();
    let n = args.conversations;

    if !args.json {
        eprintln!(
            "bench engine ({:?}): {} store, {n} conversations, {}s per phase",
            args.workload,
            store.backend(),
            duration.as_secs_f64()
        );
    }
    let (sat, paced_channel, floor_channel) =
        (format!("bench-sat-{run}"), format!("bench-paced-{run}"), format!("bench-floor-{run}"));
    let mut out = json!({ "backend": store.backend(), "workload": format!("{:?}", args.workload).to_lowercase(),
                          "conversations": n, "offered_turns_per_sec": args.rate });
    // Progress on stderr with the memory each phase leaves resident.
    let progress = |phase: &str| {
        if !args.json {
            eprintln!(
                "{phase} (RSS {} MB, peak {} MB)",
                super::rss_mb().unwrap_or(0.0),
                super::peak_rss_mb().unwrap_or(0.0)
            );
        }
    };
    let (max_tps, paced_figures, floor_tps, shape) = match args.workload {
        Workload::Chat => {
            progress("saturation");
            let max_tps = saturation(&engine, &sat, |_| Chatting, n, duration).await?;
            store.checkpoint().await?;
            progress("paced");
            let paced = super::paced::paced(&engine, &paced_channel, |_| Chatting, n, args.rate, duration).await?;
            store.checkpoint().await?;
            progress("floor");
            let shape = shape(&store, &sat).await?;
            (max_tps, paced, floor(&store, &floor_channel, n, shape, duration).await?, shape)
        }
        Workload::Recovery => {
            let ids = Arc::new(directory(&store, &url, config, tmp.path(), args.companies, args.json).await?);
            out["companies"] = json!(args.companies);
            let recovered = Arc::new(AtomicU64::new(0));
            let customers = |i| super::recovery::Recovering::new(ids.clone(), i, recovered.clone());
            // Each phase starts with the write-ahead log copied, so none pays
            // for the one before.
            progress("saturation");
            let max_tps = saturation(&engine, &sat, customers, n, duration).await?;
            store.checkpoint().await?;
            progress("paced");
            let paced = super::paced::paced(&engine, &paced_channel, customers, n, args.rate, duration).await?;
            store.checkpoint().await?;
            progress("floor");
            let shape = shape(&store, &sat).await?;
            let floor_tps = super::recovery::floor(&store, &floor_channel, ids.clone(), n, shape, duration).await?;
            out["recoveries"] = json!(recovered.load(Ordering::Relaxed));
            out["mails_queued"] = json!(store.outbox_count().await?);
            (max_tps, paced, floor_tps, shape)
        }
    };
    let super::paced::Paced {
        turns_per_sec: tps,
        p50_ms: p50,
        p99_ms: p99,
        p99_ms_by_second,
        wake_late_p99_ms,
        cpu_us_per_turn,
        threads,
    } = paced_figures;
    progress("done");
    let ratio = floor_tps / max_tps;
    let figures = json!({
        "turns_per_sec": round(tps),
        "p50_ms": round(p50),
        "p99_ms": round(p99),
        "p99_ms_by_second": p99_ms_by_second,
        "wake_late_p99_ms": wake_late_p99_ms,
        "paced_cpu_us_per_turn": cpu_us_per_turn,
        "paced_threads_us_per_turn": threads
            .iter()
            .map(|(kind, (ran, waited))| (kind.to_string(), json!({ "ran": ran, "waited_for_a_core": waited })))
            .collect::<serde_json::Map<_, _>>(),
        "max_turns_per_sec": round(max_tps),
        "floor_writes_per_sec": round(floor_tps),
        "overhead_ratio": round(ratio),
        "journal_bytes": shape.journal_bytes,
        "prompt_bytes": shape.prompt_bytes,
        "message_bytes": shape.message_bytes,
        "messages_per_turn": round(shape.messages_per_turn),
        "turns_per_conversation": round(shape.turns_per_conversation),
        "peak_rss_mb": super::peak_rss_mb(),
    });
    out.as_object_mut().expect("an object").extend(figures.as_object().expect("an object").clone());
    if args.json {
        println!("{out}");
    } else {
        println!("store                 {}", store.backend());
        println!("workload              {:?}", args.workload);
        println!("conversations         {n}");
        println!("paced turns/s         {:.0} (offered {})", tps, args.rate);
        println!("p50 / p99 latency     {p50:.2} ms / {p99:.2} ms");
        println!("p99 each second       {p99_ms_by_second:?} ms");
        println!("wake-ups late, p99    {wake_late_p99_ms} ms (an idle customer's turn started after it came due)");
        println!("CPU per paced turn    {cpu_us_per_turn} µs (the whole process)");
        for (kind, (ran, waited)) in &threads {
            println!("  {kind:<19} {ran} µs ran, {waited} µs waited for a core");
        }
        println!("saturation turns/s    {max_tps:.0}");
        println!("floor turns/s         {floor_tps:.0}");
        println!("overhead ratio        {ratio:.2} (engine cost per turn / floor cost per turn)");
        if let Some(mails) = out.get("mails_queued") {
            println!("mails queued          {mails}");
        }
        println!("peak RSS              {} MB", out["peak_rss_mb"]);
    }
    store.close().await;
    Ok(())
}

pub(super) fn clock_ms() -> i64 {
    crate::engine::Clock::System.now_ms()
}

pub(super) fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The recovery workload's directory: a synthetic one of `companies`,
/// written by `frontdesk demo-data` and imported by `frontdesk import` into
/// the bench's store (`url`), each in a process of its own, as an operator
/// loads a directory into a running deployment. The bench's process, whose
/// memory it reports, then holds what serving turns holds and not what a
/// bulk load left behind (`bench directory` measures the import's memory).
/// Returns what customers search by.
async fn directory(
    store: &Store,
    url: &str,
    config: Option<&Path>,
    tmp: &Path,
    companies: u64,
    quiet: bool,
) -> anyhow::Result<super::recovery::Identifiers> {
    let dir = tmp.join("directory");
    if !quiet {
        eprintln!("generating and importing a directory of {companies} companies...");
    }
    let exe = std::env::current_exe().context("finding this program to run demo-data and import")?;
    let companies = companies.to_string();
    let generate = [
        "demo-data".as_ref(),
        "--companies".as_ref(),
        companies.as_ref(),
        "--seed".as_ref(),
        "3".as_ref(),
        "--out".as_ref(),
        dir.as_os_str(),
    ];
    for (what, args) in [("demo-data", &generate[..]), ("import", &["import".as_ref(), dir.as_os_str()][..])] {
        let mut command = tokio::process::Command::new(&exe);
        command.arg("--data").arg(tmp.join("import-data")).env("FRONTDESK__DATABASE__URL", url);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let out = command.args(args).output().await.with_context(|| format!("running frontdesk {what}"))?;
        anyhow::ensure!(
            out.status.success(),
            "frontdesk {what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // The load's write-ahead log is copied now, not while turns are measured.
    store.checkpoint().await?;
    super::recovery::Identifiers::sample(&dir, 5000)
}

/// The shape of the saturation phase's writes, so the floor writes rows of
/// the same shape in the same mix of inserts and updates.
async fn shape(store: &Store, channel: &str) -> anyhow::Result<Shape> {
    let crate::store::ChannelShape {
        journal_bytes: j,
        prompt_bytes: pr,
        conversations: c,
        messages: m,
        message_bytes: mb,
        inbound: t,
    } = store.channel_shape(channel).await?;
    Ok(Shape {
        journal_bytes: j.max(2) as usize,
        prompt_bytes: pr.max(2) as usize,
        message_bytes: mb.max(2) as usize,
        messages_per_turn: (m as f64 / t.max(1) as f64).max(1.0),
        turns_per_conversation: (t as f64 / c.max(1) as f64).max(1.0),
    })
}
