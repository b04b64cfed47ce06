//! `frontdesk bench email`: support mail from a real (private) Dovecot
//! mailbox of realistic customer mails to queued answers, end to end, and
//! parsing alone.
//!
//! Floor measured in the same run: fetching the same mailbox over IMAP by
//! UID in the same batch size, doing nothing with the mails. End to end can
//! never beat it; the ratio says how much of the time is ours.

use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use fake::{
    faker::{company::en::CompanyName, lorem::en::Sentence, name::en::FirstName, name::en::LastName},
    Fake as _,
};
use futures::TryStreamExt as _;
use rand::{rngs::StdRng, Rng as _, SeedableRng as _};
use serde_json::json;

use crate::{
    channels::email::{imap, parse, EmailChannel},
    config::{ImapSecurity, ImapSettings, Settings},
    testing::mail_servers::{MailServers, PASSWORD},
};

#[derive(Args, Debug, Clone)]
pub struct EmailBenchArgs {
    /// Mails in the support mailbox.
    #[arg(long, default_value_t = 10_000)]
    pub mails: usize,
    /// Mails fetched per IMAP round.
    #[arg(long, default_value_t = 500)]
    pub batch: u32,
    /// Leave handled mail in the inbox (flagged \\Seen) instead of moving it
    /// to a processed folder, as `imap.processed_folder = ""` does.
    #[arg(long)]
    pub keep_in_inbox: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

const SUBJECTS: &[&str] = &[
    "I forgot my password",
    "Can't log in to My Account",
    "Locked out of our company account",
    "Need to create a new account for our company",
    "Where can I find the self-help articles?",
    "Phone number of customer service please",
    "Find my company record",
    "How do I add an administrator?",
    "Re: login problem",
    "Anmeldung funktioniert nicht",
];

/// A realistic customer mail: a greeting, a few sentences, a signature;
/// some HTML-only or multipart, some with an earlier message quoted, some
/// with an attachment, a few auto-replies.
fn customer_mail(rng: &mut StdRng, i: usize) -> Vec<u8> {
    let first: String = FirstName().fake_with_rng(rng);
    let last: String = LastName().fake_with_rng(rng);
    let company: String = CompanyName().fake_with_rng(rng);
    let domain: String =
        company.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).take(20).collect::<String>() + ".example";
    let from = format!("{}.{}{i}@{domain}", first.to_lowercase(), last.to_lowercase());
    let subject = SUBJECTS[rng.gen_range(0..SUBJECTS.len())];
    let sentences: Vec<String> = (0..rng.gen_range(2..7)).map(|_| Sentence(6..16).fake_with_rng(rng)).collect();
    let body = format!(
        "Hello,\r\n\r\n{subject}. {}\r\n\r\nBest regards,\r\n{first} {last}\r\n{company}\r\n-- \r\n{first} {last} | {company} | +49 30 1234567\r\n",
        sentences.join(" ")
    );
    let mut headers = format!(
        "Return-Path: <{from}>\r\nReceived: from mx.{domain} (mx.{domain} [192.0.2.{}]) by mail.test with ESMTPS; Fri, 27 Nov 2026 10:00:00 +0000\r\n\
         From: {first} {last} <{from}>\r\nTo: support@support.example\r\nSubject: {subject}\r\n\
         Message-ID: <bench-{i}-{}@{domain}>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n",
        i % 250,
        rng.gen::<u32>()
    );
    let kind = rng.gen_range(0..100);
    if kind < 2 {
        headers.push_str("Auto-Submitted: auto-replied\r\n");
    }
    let content = match kind {
        0..60 => format!("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"),
        60..75 => {
            let quoted: String = sentences.iter().map(|s| format!("> {s}\r\n")).collect();
            format!(
                "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{body}\r\n\
                 On Thu, 26 Nov 2026 at 09:00, My Account <support@support.example> wrote:\r\n{quoted}"
            )
        }
        75..92 => {
            let html = format!("<html><body><p>{}</p></body></html>", body.replace("\r\n", "<br>"));
            format!(
                "Content-Type: multipart/alternative; boundary=\"alt{i}\"\r\n\r\n--alt{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
                 --alt{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt{i}--\r\n"
            )
        }
        _ => {
            let attachment: String = (0..rng.gen_range(100..400))
                .map(|_| {
                    let line: Vec<u8> = (0..57).map(|_| rng.gen()).collect();
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, line) + "\r\n"
                })
                .collect();
            format!(
                "Content-Type: multipart/mixed; boundary=\"mix{i}\"\r\n\r\n--mix{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
                 --mix{i}\r\nContent-Type: image/png; name=\"screenshot.png\"\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"screenshot.png\"\r\n\r\n{attachment}--mix{i}--\r\n"
            )
        }
    };
    headers.push_str(&content);
    headers.into_bytes()
}

pub async fn run(settings: Settings, args: EmailBenchArgs) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let corpus: Vec<Vec<u8>> = (0..args.mails).map(|i| customer_mail(&mut rng, i)).collect();
    let bytes: usize = corpus.iter().map(Vec::len).sum();

    // Parsing alone, on one core.
    let started = Instant::now();
    for raw in &corpus {
        std::hint::black_box(parse::parse(raw, settings.email.max_message_bytes));
    }
    let parse_secs = started.elapsed().as_secs_f64();

    // Handling alone (parse, turn, answer queued), from memory, on its own
    // fresh store: what the channel costs without IMAP.
    let handle_secs = {
        let data = tempfile::tempdir()?;
        let settings = settings.clone();
        let concurrency = settings.email.concurrency;
        let app = crate::app::App::open(settings, data.path().to_path_buf()).await?;
        let channel = EmailChannel::new(app.engine.clone(), app.settings.clone());
        let started = Instant::now();
        let mails = corpus.iter().map(|raw| ((), raw.clone(), crate::channels::email::Source::Ingest)).collect();
        let results = channel.handle_many(mails, concurrency).await;
        let secs = started.elapsed().as_secs_f64();
        anyhow::ensure!(results.len() == corpus.len(), "a mail's handling panicked");
        for (_, r) in results {
            r?;
        }
        app.store.close().await;
        secs
    };

    // The mailbox.
    let servers = MailServers::start(&[]).context("the email bench needs a private Dovecot (root, dovecot-imapd)")?;
    for (i, raw) in corpus.iter().enumerate() {
        servers.deliver_to_maildir("support", &format!("{}.M{i}.bench:2,", 1_700_000_000 + i), raw)?;
    }
    let fetch_secs = fetch_floor(servers.imap_port, args.batch).await?;

    // End to end: IMAP → parse → turn → answer queued, on a fresh SQLite store.
    let data = tempfile::tempdir()?;
    let imap_settings = ImapSettings {
        host: "127.0.0.1".into(),
        port: servers.imap_port,
        security: ImapSecurity::Plain,
        ca_file: None,
        username: "support".into(),
        password: Some(crate::config::Secret::from(PASSWORD)),
        mailbox: "INBOX".into(),
        processed_folder: (!args.keep_in_inbox).then(|| "Processed".to_string()),
        idle: true,
        poll_interval: std::time::Duration::from_secs(30),
        fetch_batch: args.batch,
        reconnect_max: std::time::Duration::from_secs(5),
    };
    let concurrency = settings.email.concurrency;
    let app = crate::app::App::open(settings, data.path().to_path_buf()).await?;
    let channel = EmailChannel::new(app.engine.clone(), app.settings.clone());
    let watched = channel.clone();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let reader = tokio::spawn(imap::run(channel, imap_settings, concurrency, stop));
    // Waits on the channel's own count (a millisecond's resolution): asking
    // the store (a scan of every recorded mail) every few milliseconds took
    // a tenth of a core from the mails it was counting.
    while watched.stages().finished() < args.mails as u64 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        anyhow::ensure!(
            started.elapsed().as_secs() < 600,
            "only {} of {} mails handled in 10 minutes",
            watched.stages().finished(),
            args.mails
        );
        anyhow::ensure!(!reader.is_finished(), "the IMAP reader stopped");
    }
    let with_connect_secs = started.elapsed().as_secs_f64();
    let (handled, answered) = app.store.mail_counts().await?;
    anyhow::ensure!(handled == args.mails as i64, "{handled} mails recorded of {} handled", args.mails);
    let _ = stop_tx.send(true);
    let _ = reader.await;
    let queued = crate::mail::outbox::entries(&app.store).await?.len();
    app.store.close().await;

    let n = args.mails as f64;
    // End to end counts from the open mailbox, as the fetch floor does: the
    // session's opening comes first and alone (in it Dovecot syncs the
    // 10,000 mails just delivered, once), and is printed as its own stage.
    let (connect, connects) = watched.stages().total(crate::channels::email::stages::Stage::Connect);
    anyhow::ensure!(connects == 1, "the IMAP session was opened {connects} times (it should open once)");
    let e2e_secs = with_connect_secs - connect.as_secs_f64();
    // Busy time per stage, summed over the mails handled at once: per mail,
    // what each stage costs; against the wall clock, which stage bounds it.
    let stages: Vec<(&str, f64, f64, u64)> = watched
        .stages()
        .totals()
        .into_iter()
        .map(|(stage, busy, passes)| {
            let secs = busy.as_secs_f64();
            (stage.name(), (secs * 1e3).round(), (secs / n * 1e6 * 10.0).round() / 10.0, passes)
        })
        .collect();
    let breakdown: serde_json::Map<String, serde_json::Value> = stages
        .iter()
        .map(|(name, ms, us, passes)| (name.to_string(), json!({ "busy_ms": ms, "us_per_mail": us, "passes": passes })))
        .collect();
    let report = json!({
        "mails": args.mails,
        "corpus_megabytes": (bytes as f64 / 1e6 * 10.0).round() / 10.0,
        "parse_mails_per_sec": (n / parse_secs).round(),
        "handle_only_mails_per_sec": (n / handle_secs).round(),
        "imap_fetch_floor_mails_per_sec": (n / fetch_secs).round(),
        "end_to_end_mails_per_sec": (n / e2e_secs).round(),
        "end_to_end_vs_fetch_floor": ((fetch_secs / e2e_secs) * 100.0).round() / 100.0,
        "end_to_end_with_connect_mails_per_sec": (n / with_connect_secs).round(),
        "handled_mail": if args.keep_in_inbox { "flagged \\Seen in the inbox" } else { "moved to Processed" },
        "answered": answered,
        "skipped": handled - answered,
        "answers_queued": queued,
        "end_to_end_seconds": (e2e_secs * 1000.0).round() / 1000.0,
        "stages": breakdown,
        "peak_rss_mb": super::peak_rss_mb(),
        "targets": { "end_to_end_mails_per_sec": 8000, "parse_mails_per_sec": 5000 },
    });
    if args.json {
        println!("{report}");
    } else {
        println!("email bench: {} mails ({:.1} MB) in a private Dovecot, SQLite store", args.mails, bytes as f64 / 1e6);
        println!("  parse only (one core):       {:>8.0} mails/s   (target 5,000)", n / parse_secs);
        println!("  handling only (from memory): {:>8.0} mails/s", n / handle_secs);
        println!("  IMAP fetch floor:            {:>8.0} mails/s", n / fetch_secs);
        println!(
            "  end to end (IMAP → answer):  {:>8.0} mails/s   (target 8,000; from the open mailbox)",
            n / e2e_secs
        );
        println!("  the same with the session's opening: {:>8.0} mails/s", n / with_connect_secs);
        println!("  {answered} answered, {} skipped (auto-replies), {queued} answers queued", handled - answered);
        println!("  end to end took {:.0} ms; busy time per stage (mails run concurrently):", e2e_secs * 1e3);
        for (name, ms, us, passes) in &stages {
            println!("    {name:<10} {ms:>8.0} ms  {us:>7.1} µs/mail  ({passes} passes)");
        }
        println!("  peak RSS {} MB", report["peak_rss_mb"]);
    }
    Ok(())
}

/// Fetches every mail by UID in batches and does nothing with them.
async fn fetch_floor(port: u16, batch: u32) -> anyhow::Result<f64> {
    let mut session = crate::testing::imap_client::login(port, "support").await?;
    let mailbox = session.examine("INBOX").await?;
    let uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
    anyhow::ensure!(uids.len() as u32 == mailbox.exists, "the mailbox is incomplete");
    let mut uids = uids;
    uids.sort_unstable();
    let started = Instant::now();
    let mut bytes = 0;
    for chunk in uids.chunks(batch as usize) {
        let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let fetched: Vec<_> = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?.try_collect().await?;
        bytes += fetched.iter().map(|f| f.body().map_or(0, <[u8]>::len)).sum::<usize>();
    }
    let secs = started.elapsed().as_secs_f64();
    std::hint::black_box(bytes);
    let _ = session.logout().await;
    Ok(secs)
}

/// The bench's mails come from a few thousand customers of a few domains:
/// the daily caps (still taken for every mail) must not refuse them.
pub const SETTINGS: &[(&str, &str)] = &[
    ("email.answers_per_sender_per_day", "1000000"),
    ("email.answers_per_unproven_domain_per_day", "10000000"),
    ("email.answers_to_unproven_per_day", "10000000"),
];
