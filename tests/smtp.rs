//! The outbox worker against an SMTP server on loopback: a transient failure
//! is retried later and the mail goes out once; a permanent (5xx) failure
//! marks the mail failed. The server is a small stand-in speaking enough
//! SMTP for lettre's client, with scripted answers.

mod common;

use std::sync::{Arc, Mutex};

use frontdesk::{
    config::{SmtpSecurity, SmtpSettings},
    directory::import::import_dir,
    engine::{Clock, Engine},
    mail::outbox::{entries, Outbox},
    store::{Store, Write},
};
use std::time::Duration;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

#[derive(Default)]
struct Script {
    /// Answers to successive DATA terminations ("250 ok", "451 later", ...).
    data: Vec<&'static str>,
    /// Answer to RCPT TO.
    rcpt: Option<&'static str>,
    /// Complete messages received.
    received: Vec<String>,
    /// How long the server takes to accept a message (a slow relay).
    delay: std::time::Duration,
}

async fn stand_in(script: Arc<Mutex<Script>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            let script = script.clone();
            tokio::spawn(async move {
                let (r, mut w) = socket.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 stand-in ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            let delay = script.lock().unwrap().delay;
                            tokio::time::sleep(delay).await;
                            let answer = {
                                let mut s = script.lock().unwrap();
                                let answer = if s.data.is_empty() { "250 ok" } else { s.data.remove(0) };
                                if answer.starts_with('2') {
                                    s.received.push(std::mem::take(body));
                                }
                                answer
                            };
                            data = None;
                            w.write_all(format!("{answer}\r\n").as_bytes()).await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                    let answer = match verb.as_str() {
                        "EHLO" | "HELO" => "250 stand-in".to_string(),
                        "MAIL" => "250 ok".to_string(),
                        "RCPT" => script.lock().unwrap().rcpt.unwrap_or("250 ok").to_string(),
                        "DATA" => {
                            data = Some(String::new());
                            "354 go ahead".to_string()
                        }
                        "RSET" | "NOOP" => "250 ok".to_string(),
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => "502 not implemented".to_string(),
                    };
                    if w.write_all(format!("{answer}\r\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A store with one login-information mail queued, through the real flow.
async fn queued_mail(url: &str, clock: &Clock) -> (Store, Arc<frontdesk::config::Settings>) {
    let store = Store::open(url, 4).await.unwrap();
    import_dir(&store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let settings = Arc::new(common::settings());
    let engine = Engine::builder(store.clone(), settings.clone())
        .effects(frontdesk::app::effects(&store, &settings))
        .clock(clock.clone())
        .build();
    for line in ["login", "1", "alee", "1"] {
        common::say(&engine, "ann", line).await;
    }
    assert_eq!(entries(&store).await.unwrap().len(), 1);
    (store, settings)
}

fn smtp_settings(settings: &frontdesk::config::Settings, port: u16) -> frontdesk::config::MailSettings {
    let mut mail = settings.mail.clone();
    mail.smtp = Some(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
    });
    mail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_and_the_mail_goes_out_once() {
    let db = common::TestDb::sqlite();
    let clock = Clock::manual(1_800_000_000_000);
    let (store, settings) = queued_mail(&db.url, &clock).await;
    let script = Arc::new(Mutex::new(Script { data: vec!["451 4.3.0 try again later"], ..Default::default() }));
    let port = stand_in(script.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(store.clone(), &smtp_settings(&settings, port), data.path()).unwrap();

    assert_eq!(outbox.run_once(clock.now_ms()).await.unwrap(), 0, "the server said later");
    assert_eq!(entries(&store).await.unwrap()[0].status, "queued");
    assert_eq!(outbox.run_once(clock.now_ms()).await.unwrap(), 0, "not retried before its backoff");
    clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(outbox.run_once(clock.now_ms()).await.unwrap(), 1);
    assert_eq!(outbox.run_once(clock.now_ms()).await.unwrap(), 0, "sent once");

    let received = script.lock().unwrap().received.clone();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    for header in [
        "To: Ann.Lee@acme.example",
        "Auto-Submitted: auto-generated",
        "Message-ID: <",
        "Subject: Your My Account login information",
    ] {
        assert!(mail.contains(header), "{header} missing from:\n{mail}");
    }
    let entry = &entries(&store).await.unwrap()[0];
    assert_eq!((entry.status.as_str(), entry.context.as_str()), ("sent", "{}"), "sent, and the reset link wiped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_marks_the_mail_failed() {
    let db = common::TestDb::sqlite();
    let clock = Clock::manual(1_800_000_000_000);
    let (store, settings) = queued_mail(&db.url, &clock).await;
    let script = Arc::new(Mutex::new(Script { rcpt: Some("550 5.1.1 no such user"), ..Default::default() }));
    let port = stand_in(script.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(store.clone(), &smtp_settings(&settings, port), data.path()).unwrap();
    assert_eq!(outbox.run_once(clock.now_ms()).await.unwrap(), 0);
    assert_eq!(entries(&store).await.unwrap()[0].status, "failed");
    clock.advance(std::time::Duration::from_secs(86400));
    assert_eq!(outbox.run_once(clock.now_ms()).await.unwrap(), 0, "a failed mail is not tried again");
    assert!(script.lock().unwrap().received.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_loses_nothing() {
    let db = common::TestDb::sqlite();
    let clock = Clock::manual(1_800_000_000_000);
    let (store, settings) = queued_mail(&db.url, &clock).await;
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(store.clone(), &smtp_settings(&settings, port), data.path()).unwrap();
    assert_eq!(outbox.run_once(clock.now_ms()).await.unwrap(), 0);
    assert_eq!(entries(&store).await.unwrap()[0].status, "queued", "kept for a later attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_from_customers_cannot_inject_mail_headers() {
    let db = common::TestDb::sqlite();
    let clock = Clock::manual(1_800_000_000_000);
    let store = Store::open(&db.url, 4).await.unwrap();
    let settings = Arc::new(common::settings());
    let engine = Engine::builder(store.clone(), settings.clone())
        .effects(frontdesk::app::effects(&store, &settings))
        .clock(clock.clone())
        .build();
    for line in [
        "create a new account",
        "Evil Corp\r\nBcc: spy@evil.example\r\nX-Injected: yes",
        "@everyone",
        "**Bold** <b>",
        "jane@evilcorp.example",
        "{code}",
        "DE",
        "Hauptstrasse 1",
        "Berlin",
        "none",
        "10115",
        "030 901820",
        "yes",
    ] {
        common::say(&engine, "jane", line).await;
    }
    let script = Arc::new(Mutex::new(Script::default()));
    let port = stand_in(script.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(store.clone(), &smtp_settings(&settings, port), data.path()).unwrap();
    assert_eq!(outbox.run_once(clock.now_ms()).await.unwrap(), 2, "the code, then the confirmation");
    let mail = script.lock().unwrap().received.pop().unwrap();
    // Unfold (RFC 5322: a line starting with white space continues the
    // header above), then look at whole headers.
    let raw = mail.split("\n\n").next().unwrap();
    let mut unfolded: Vec<String> = Vec::new();
    for line in raw.lines() {
        match unfolded.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => unfolded.push(line.to_string()),
        }
    }
    let headers = unfolded.join("\n");
    assert!(!unfolded.iter().any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected:")), "{headers}");
    let subject: Vec<&String> = unfolded.iter().filter(|l| l.starts_with("Subject:")).collect();
    assert_eq!(subject.len(), 1, "{headers}");
    let text = subject[0].split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("Evil Corp Bcc: spy@evil.example X-Injected: yes"), "the name stays text: {text}");
}

/// Queues `n` mails straight into the outbox.
async fn queue(store: &Store, n: usize, now: i64) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("mail{i}@frontdesk.example")).collect();
    let writes: Vec<Write> = ids
        .iter()
        .map(|id| Write::Mail(frontdesk::store::outbox::NewMail {
            message_id: id.clone(),
            template: "reply".into(),
            to: frontdesk::domain::EmailAddress::parse("ann.lee@acme.example").unwrap(),
            context: serde_json::json!({ "messages": [{ "text": "hello", "options": [] }], "asks": false, "subject": "Hi" }),
        }))
        .collect();
    store.record(&writes, now).await.unwrap();
    ids
}

/// Each queued Message-ID and how often the server accepted it.
fn deliveries(script: &Mutex<Script>, ids: &[String]) -> Vec<(String, usize)> {
    let received = script.lock().unwrap().received.clone();
    ids.iter().map(|id| (id.clone(), received.iter().filter(|m| m.contains(&format!("<{id}>"))).count())).collect()
}

const T0: i64 = 1_800_000_000_000;

/// The clock a worker started at `start` reads now, in real time from `T0`.
fn clock_at(start: std::time::Instant) -> i64 {
    T0 + start.elapsed().as_millis() as i64
}

// Two workers (on PostgreSQL, two instances) and a relay that takes 2 s per
// mail against a 1 s claim lease: the second comes by once the first one's
// claim on its whole batch has run out, while the first is still sending its
// first mail. The first keeps the lease of the mail it is sending alive, so the
// second takes the others and no mail goes out twice (before the lease was
// kept, the mail being sent was reclaimed and delivered twice).
both_backends!(two_workers_and_a_slow_server_deliver_every_mail_exactly_once, |url: String| async move {
    let (store_a, store_b) = (Store::open(&url, 4).await.unwrap(), Store::open(&url, 4).await.unwrap());
    let ids = queue(&store_a, 3, T0).await;
    let script = Arc::new(Mutex::new(Script { delay: Duration::from_millis(2000), ..Default::default() }));
    let port = stand_in(script.clone()).await;
    let settings = common::settings();
    let data = tempfile::tempdir().unwrap();
    let worker = |store: &Store| {
        Outbox::new(store.clone(), &smtp_settings(&settings, port), data.path())
            .unwrap()
            .with_timings(Duration::from_secs(1), Duration::from_secs(10))
    };
    let (a, b) = (Arc::new(worker(&store_a)), worker(&store_b));
    let start = std::time::Instant::now();
    let first = tokio::spawn({
        let a = a.clone();
        async move { a.run_once(T0).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = b.run_once(clock_at(start)).await.unwrap();
    let first = first.await.unwrap();
    assert_eq!((first, second), (1, 2), "the second took what the first had not started");
    assert_eq!(deliveries(&script, &ids), ids.iter().map(|id| (id.clone(), 1)).collect::<Vec<_>>());
    assert!(entries(&store_a).await.unwrap().iter().all(|e| e.status == "sent"));
    store_a.close().await;
    store_b.close().await;
});

// A worker killed in the middle of a send (its task dropped, as SIGKILL
// would) holds that mail no longer than one lease: another worker sends it.
// Before, the claim was stretched past the longest possible send (3 minutes)
// before sending, so a restarted `serve` left that mail waiting that long.
both_backends!(a_worker_killed_mid_send_holds_its_mail_one_lease_at_most, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let ids = queue(&store, 2, T0).await;
    let script = Arc::new(Mutex::new(Script { delay: Duration::from_millis(1500), ..Default::default() }));
    let port = stand_in(script.clone()).await;
    let settings = common::settings();
    let data = tempfile::tempdir().unwrap();
    let worker = || {
        Outbox::new(store.clone(), &smtp_settings(&settings, port), data.path())
            .unwrap()
            .with_timings(Duration::from_secs(1), Duration::from_secs(10))
    };
    let killed = tokio::spawn({
        let a = worker();
        async move { a.run_once(T0).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    killed.abort();
    let _ = killed.await;
    // One lease and a bit later by the clock, and by the clock only.
    let sent = worker().run_once(T0 + 2_500).await.unwrap();
    assert_eq!(sent, 2, "the killed worker's mails are sent by the next one");
    for (id, times) in deliveries(&script, &ids) {
        // The killed send may have reached the relay: at least once.
        assert!(times >= 1, "{id} delivered {times} times");
    }
    store.close().await;
});

// A round that runs out of time gives back every mail it did not send,
// including the one it was about to start: before the fix that one stayed
// claimed until the lease ran out.
both_backends!(a_round_out_of_time_releases_every_mail_it_did_not_send, |url: String| async move {
    common::logs();
    let store = Store::open(&url, 4).await.unwrap();
    let ids = queue(&store, 5, T0).await;
    let script = Arc::new(Mutex::new(Script { delay: Duration::from_millis(600), ..Default::default() }));
    let port = stand_in(script.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(store.clone(), &smtp_settings(&common::settings(), port), data.path())
        .unwrap()
        .with_timings(Duration::from_secs(2), Duration::from_secs(10));
    let sent = outbox.run_once(T0).await.unwrap();
    // Each mail's deliveries first: if the count is ever off again (it was
    // 6 once in CI, and never in 190 runs since), this says which mail.
    let outbox_rows = entries(&store).await.unwrap();
    assert_eq!(deliveries(&script, &ids), ids.iter().map(|id| (id.clone(), 1)).collect::<Vec<_>>(), "{outbox_rows:?}");
    assert_eq!(sent, 5, "all sent in one run, in several rounds");
    store.close().await;
});
