//! The e-mail channel against real servers: a private Postfix takes the
//! customers' mail and delivers it over LMTP into a private Dovecot; a real
//! `frontdesk serve` reads the support mailbox over IMAP and answers through
//! Postfix; each test reads the customer's mailbox over IMAP.
//!
//! Needs root and `dovecot-imapd dovecot-lmtpd postfix` (installed by
//! `.ci/run`). Outside CI a machine without them skips loudly; in CI
//! (`CI=true`) that is a failure.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use frontdesk::testing::{
    imap_client::{self, header, text},
    mail_servers::{self, MailServers},
};

const SUPPORT: &str = "support@support.example";
const ANN: &str = "ann@customers.example";

/// Private Dovecot and Postfix instances for one test. Missing packages fail
/// the test: it never passes by not running.
fn servers(customers: &[&str]) -> Option<MailServers> {
    if let Err(why) = mail_servers::available() {
        panic!("{why}: these tests need the Debian packages dovecot-imapd, dovecot-lmtpd and postfix (`.ci/run` installs them)");
    }
    Some(MailServers::start(customers).expect("start Dovecot and Postfix"))
}

/// A `frontdesk serve` process reading the support mailbox.
struct Frontdesk {
    data: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    starts: usize,
}

impl Frontdesk {
    fn new(servers: &MailServers, data: &Path, extra: &[(&str, &str)]) -> Frontdesk {
        let mut env: Vec<(String, String)> = vec![
            ("FRONTDESK__HTTP__LISTEN".into(), "127.0.0.1:0".into()),
            ("FRONTDESK__IMAP__HOST".into(), "127.0.0.1".into()),
            ("FRONTDESK__IMAP__PORT".into(), servers.imap_port.to_string()),
            ("FRONTDESK__IMAP__SECURITY".into(), "plain".into()),
            ("FRONTDESK__IMAP__USERNAME".into(), "support".into()),
            ("FRONTDESK__IMAP__PASSWORD".into(), mail_servers::PASSWORD.into()),
            ("FRONTDESK__IMAP__POLL_INTERVAL".into(), "5s".into()),
            ("FRONTDESK__SMTP__HOST".into(), "127.0.0.1".into()),
            ("FRONTDESK__SMTP__PORT".into(), servers.smtp_port.to_string()),
            ("FRONTDESK__SMTP__SECURITY".into(), "plain".into()),
            ("FRONTDESK__MAIL__FROM".into(), format!("My Account <{SUPPORT}>")),
            ("FRONTDESK__MAIL__RETRY_BASE".into(), "1s".into()),
            ("RUST_LOG".into(), "info,sqlx=warn".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let out = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .arg("--data")
            .arg(data)
            .arg("import")
            .arg(common::repo_path("tests/fixtures/mail_directory"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run frontdesk import");
        assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
        Frontdesk { data: data.to_path_buf(), env, child: None, starts: 0 }
    }

    fn start(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.data.join(format!("serve-{}.log", self.starts))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .arg("--data")
            .arg(&self.data)
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start frontdesk serve");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.data.join(format!("serve-{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    fn assert_running(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("frontdesk serve exited ({status}):\n{}", self.logs());
            }
        }
    }
}

impl Drop for Frontdesk {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

fn mail(from: &str, subject: &str, id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Ann Carter <{from}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n{extra_headers}MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A reply to one of frontdesk's answers, threaded as mail clients do.
fn reply_to(answer: &[u8], id: &str, body: &str) -> Vec<u8> {
    let their_id = header(answer, "Message-ID").unwrap();
    let refs = header(answer, "References").unwrap_or_default();
    let subject = header(answer, "Subject").unwrap();
    let quoted: String = text(answer).lines().map(|l| format!("> {l}\r\n")).collect();
    mail(
        ANN,
        &format!("Re: {subject}"),
        id,
        &format!("In-Reply-To: {their_id}\r\nReferences: {refs} {their_id}\r\n"),
        &format!("{body}\r\n\r\nOn Fri, 27 Nov 2026 at 10:00, My Account <{SUPPORT}> wrote:\r\n{quoted}"),
    )
}

/// Waits for `n` mails in a mailbox. Long enough for a mail whose sending
/// was cut short by a SIGKILL: its claim in the outbox lapses after 20 s.
async fn wait_for(servers: &MailServers, fd: &mut Frontdesk, user: &str, n: usize) -> Vec<Vec<u8>> {
    match imap_client::wait_for(servers.imap_port, user, n, Duration::from_secs(45)).await {
        Ok(mails) => mails,
        Err(e) => {
            fd.assert_running();
            panic!("{e}\n{}\n--- frontdesk\n{}", servers.logs(), fd.logs())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_by_mail_end_to_end_and_replies_continue_the_conversation() {
    let Some(servers) = servers(&["ann"]) else { return };
    let data = tempfile::tempdir().unwrap();
    let mut fd = Frontdesk::new(&servers, data.path(), &[]);
    fd.start();

    imap_client::send(
        servers.smtp_port,
        Some(ANN),
        SUPPORT,
        &mail(
            ANN,
            "I forgot my password",
            "q1@customers.example",
            "",
            "Hello,\r\n\r\nI cannot log in any more.\r\n\r\nAnn",
        ),
    )
    .await
    .unwrap();
    let mails = wait_for(&servers, &mut fd, "ann", 1).await;
    let first = &mails[0];
    assert!(text(first).contains("How would you like to find your company record?"), "{}", text(first));
    assert_eq!(header(first, "In-Reply-To").as_deref(), Some("<q1@customers.example>"));
    assert_eq!(header(first, "Auto-Submitted").as_deref(), Some("auto-replied"));
    assert!(header(first, "Subject").unwrap().starts_with("Re: I forgot my password [ref:"));

    // By number, then a free-text answer, then by the words of a choice.
    imap_client::send(servers.smtp_port, Some(ANN), SUPPORT, &reply_to(first, "q2@customers.example", "2"))
        .await
        .unwrap();
    let mails = wait_for(&servers, &mut fd, "ann", 2).await;
    assert!(text(&mails[1]).contains("What is your e-mail address?"), "{}", text(&mails[1]));
    imap_client::send(
        servers.smtp_port,
        Some(ANN),
        SUPPORT,
        &reply_to(&mails[1], "q3@customers.example", "Hi,\r\n\r\nann@customers.example"),
    )
    .await
    .unwrap();
    let mails = wait_for(&servers, &mut fd, "ann", 3).await;
    let list = text(&mails[2]);
    assert!(list.contains("Customers Example GmbH") && list.contains("Ann C."), "{list}");
    imap_client::send(servers.smtp_port, Some(ANN), SUPPORT, &reply_to(&mails[2], "q4@customers.example", "Ann C."))
        .await
        .unwrap();

    // The conversation's answer and the login information, which goes to
    // the address on record.
    let mails = wait_for(&servers, &mut fd, "ann", 5).await;
    let texts: Vec<String> = mails.iter().map(|m| text(m)).collect();
    let login = texts.iter().find(|t| t.contains("User name: annc")).unwrap_or_else(|| panic!("{texts:#?}"));
    assert!(login.contains("reset?token="), "{login}");
    assert!(texts.iter().any(|t| t.contains("Your login information is on its way")), "{texts:#?}");
    // Every answer threads on the customer's mail it answers.
    let threads: BTreeSet<String> =
        mails.iter().filter_map(|m| header(m, "Subject")).filter(|s| s.contains("[ref:")).collect();
    assert_eq!(threads.len(), 1, "one conversation, one thread: {threads:?}");
    fd.assert_running();

    // Handled mail was flagged and moved out of the inbox.
    let inbox = imap_client::fetch_all(servers.imap_port, "support", "INBOX").await.unwrap();
    let processed = imap_client::fetch_all(servers.imap_port, "support", "Processed").await.unwrap();
    assert_eq!((inbox.len(), processed.len()), (0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_over_tls_with_a_private_ca() {
    let Some(servers) = servers(&["ann"]) else { return };
    let data = tempfile::tempdir().unwrap();
    let ca = servers.ca_file().display().to_string();
    let imaps = servers.imaps_port.to_string();
    let tls = [
        ("FRONTDESK__IMAP__SECURITY", "tls"),
        ("FRONTDESK__IMAP__PORT", imaps.as_str()),
        ("FRONTDESK__IMAP__CA_FILE", ca.as_str()),
    ];
    let mut fd = Frontdesk::new(&servers, data.path(), &tls);
    fd.start();
    imap_client::send(servers.smtp_port, Some(ANN), SUPPORT, &mail(ANN, "self help", "tls-1@c", "", "articles"))
        .await
        .unwrap();
    let mails = wait_for(&servers, &mut fd, "ann", 1).await;
    assert_eq!(header(&mails[0], "In-Reply-To").as_deref(), Some("<tls-1@c>"));

    // Without the CA, the server is not trusted: nothing is read, and the
    // log says why.
    let data = tempfile::tempdir().unwrap();
    let mut untrusting = Frontdesk::new(&servers, data.path(), &tls[..2]);
    untrusting.start();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(untrusting.logs().contains("TLS handshake"), "{}", untrusting.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_replies_bounces_and_list_mail_get_no_answer() {
    let Some(servers) = servers(&["ann"]) else { return };
    let data = tempfile::tempdir().unwrap();
    let mut fd = Frontdesk::new(&servers, data.path(), &[]);
    fd.start();
    // (envelope sender, mail); a bounce's null envelope sender becomes
    // `Return-Path: <>`. A person's mail comes last: once it is answered,
    // the others were handled.
    let mails: Vec<(Option<&str>, Vec<u8>)> = vec![
        (Some(ANN), mail(ANN, "Out of office", "ooo@c", "Auto-Submitted: auto-replied\r\n", "I am away.")),
        (
            None,
            mail(
                "mailer-daemon@customers.example",
                "Undelivered Mail Returned to Sender",
                "b@c",
                "",
                "This is the mail system.",
            ),
        ),
        (
            Some(ANN),
            mail(ANN, "[news] weekly", "list@c", "List-Id: <news.customers.example>\r\nPrecedence: list\r\n", "News."),
        ),
        (Some(ANN), mail(ANN, "Meeting", "oof@c", "X-Auto-Response-Suppress: All\r\n", "Invite.")),
        (Some(ANN), mail(ANN, "self help articles please", "person@c", "", "Thanks")),
    ];
    for (envelope_from, raw) in &mails {
        imap_client::send(servers.smtp_port, *envelope_from, SUPPORT, raw).await.unwrap();
    }
    let mails = wait_for(&servers, &mut fd, "ann", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails_after = imap_client::fetch_all(servers.imap_port, "ann", "INBOX").await.unwrap();
    assert_eq!(
        mails_after.len(),
        1,
        "only the person's mail is answered: {:?}",
        mails_after.iter().map(|m| header(m, "Subject")).collect::<Vec<_>>()
    );
    assert_eq!(header(&mails[0], "In-Reply-To").as_deref(), Some("<person@c>"));
    // Nothing was lost: every mail was recorded, the skipped ones with their reason.
    let store = frontdesk::store::Store::open(&frontdesk::store::Store::sqlite_url(data.path()), 2).await.unwrap();
    for (key, reason) in
        [("ooo@c", "auto_submitted"), ("b@c", "bounce"), ("list@c", "precedence"), ("oof@c", "response_suppressed")]
    {
        let (outcome, why, _) = store.mail_outcome(key).await.unwrap().unwrap_or_else(|| panic!("{key} not recorded"));
        assert_eq!((outcome.as_str(), why.as_deref()), ("skipped", Some(reason)), "{key}");
    }
    let processed = imap_client::fetch_all(servers.imap_port, "support", "Processed").await.unwrap();
    assert_eq!(processed.len(), 5);
    // Flagged \Seen on the way (the fetch peeks; the flag comes with the move).
    assert_eq!(imap_client::unseen(servers.imap_port, "support", "Processed").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_mails_survives_two_sigkills_each_answered_exactly_once() {
    let Some(servers) = servers(&["ann"]) else { return };
    let data = tempfile::tempdir().unwrap();
    let mut fd = Frontdesk::new(&servers, data.path(), &[("FRONTDESK__EMAIL__ANSWERS_PER_SENDER_PER_DAY", "1000")]);
    fd.start();
    let smtp = servers.smtp_port;
    let sender = tokio::spawn(async move {
        for i in 0..100 {
            let raw = mail(
                ANN,
                &format!("login help {i}"),
                &format!("burst-{i}@customers.example"),
                "",
                "I forgot my password",
            );
            imap_client::send(smtp, Some(ANN), SUPPORT, &raw).await.unwrap();
        }
    });
    for _ in 0..2 {
        let wait = rand::random::<u64>() % 1500 + 300;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        fd.kill();
        fd.start();
    }
    sender.await.unwrap();
    wait_for(&servers, &mut fd, "ann", 100).await;
    // Anything still in flight settles (a mailbox only grows).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = imap_client::fetch_all(servers.imap_port, "ann", "INBOX").await.unwrap();
    let mut answers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &mails {
        let answered = header(m, "In-Reply-To").expect("every answer threads");
        answers.entry(answered).or_default().insert(header(m, "Message-ID").unwrap());
    }
    let expected: BTreeSet<String> = (0..100).map(|i| format!("<burst-{i}@customers.example>")).collect();
    let answered: BTreeSet<String> = answers.keys().cloned().collect();
    assert_eq!(answered, expected, "every mail answered, none lost\n{}", fd.logs());
    for (question, ids) in &answers {
        assert_eq!(ids.len(), 1, "{question} got {} different answers", ids.len());
    }
    // The SMTP leg is at least once: a SIGKILL between the server's "250 OK"
    // and the outbox recording it makes the restarted process send that one
    // mail again, as the same mail (same Message-ID, which mail clients
    // collapse). The outbox sends one mail at a time, so each kill can cause
    // at most one such resend.
    let resent = mails.len() - 100;
    assert!(resent <= 2, "{resent} resends after 2 kills");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_wait_while_the_smtp_server_is_down_and_go_out_when_it_is_back() {
    let Some(mut servers) = servers(&["ann"]) else { return };
    let data = tempfile::tempdir().unwrap();
    let mut fd = Frontdesk::new(&servers, data.path(), &[]);
    imap_client::send(
        servers.smtp_port,
        Some(ANN),
        SUPPORT,
        &mail(ANN, "I forgot my password", "down-1@c", "", "help"),
    )
    .await
    .unwrap();
    // Wait until the mail is in the support mailbox, then take SMTP away.
    for _ in 0..100 {
        if !imap_client::fetch_all(servers.imap_port, "support", "INBOX").await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    servers.stop_postfix();
    fd.start();
    let store = frontdesk::store::Store::open(&frontdesk::store::Store::sqlite_url(data.path()), 2).await.unwrap();
    // The mail is handled and its answer queued; delivery fails and is retried.
    let mut queued = false;
    for _ in 0..100 {
        let entries = frontdesk::mail::outbox::entries(&store).await.unwrap();
        if entries.iter().any(|e| e.template == "reply" && e.status == "queued")
            && fd.logs().contains("mail not sent yet")
        {
            queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(queued, "the answer should wait in the outbox:\n{}", fd.logs());
    servers.start_postfix().unwrap();
    let mails = wait_for(&servers, &mut fd, "ann", 1).await;
    assert_eq!(header(&mails[0], "In-Reply-To").as_deref(), Some("<down-1@c>"));
    let entries = frontdesk::mail::outbox::entries(&store).await.unwrap();
    assert!(entries.iter().all(|e| e.status == "sent"), "{entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_resumes_after_dovecot_restarts_during_idle() {
    let Some(mut servers) = servers(&["ann"]) else { return };
    let data = tempfile::tempdir().unwrap();
    let mut fd = Frontdesk::new(&servers, data.path(), &[("FRONTDESK__IMAP__POLL_INTERVAL", "10m")]);
    fd.start();
    imap_client::send(servers.smtp_port, Some(ANN), SUPPORT, &mail(ANN, "self help", "idle-1@c", "", "articles"))
        .await
        .unwrap();
    wait_for(&servers, &mut fd, "ann", 1).await;
    // frontdesk is now in IDLE (the poll interval is long: only IDLE or a
    // reconnect can bring the next mail in).
    tokio::time::sleep(Duration::from_millis(300)).await;
    servers.stop_dovecot();
    tokio::time::sleep(Duration::from_millis(300)).await;
    servers.start_dovecot().unwrap();
    imap_client::send(servers.smtp_port, Some(ANN), SUPPORT, &mail(ANN, "self help", "idle-2@c", "", "articles"))
        .await
        .unwrap();
    let mails = wait_for(&servers, &mut fd, "ann", 2).await;
    assert_eq!(header(&mails[1], "In-Reply-To").as_deref(), Some("<idle-2@c>"), "{}", fd.logs());
    fd.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_hostile_mail_gets_a_clear_outcome_and_no_panic() {
    let Some(servers) = servers(&["ann"]) else { return };
    let data = tempfile::tempdir().unwrap();
    // Also the other way of reading: polling instead of IDLE, and handled
    // mail left in the inbox (flagged) instead of moved.
    let settings = [
        ("FRONTDESK__EMAIL__MAX_MESSAGE_BYTES", "65536"),
        ("FRONTDESK__IMAP__IDLE", "false"),
        ("FRONTDESK__IMAP__POLL_INTERVAL", "1s"),
        ("FRONTDESK__IMAP__PROCESSED_FOLDER", ""),
    ];
    let mut fd = Frontdesk::new(&servers, data.path(), &settings);
    fd.start();
    let smtp = servers.smtp_port;
    let huge_header = format!("X-Junk: {}\r\n", "a".repeat(60_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // A multipart whose boundary never appears.
        ("broken-mime@c", format!("From: {ANN}\r\nSubject: help\r\nMessage-ID: <broken-mime@c>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=nowhere\r\n\r\nI forgot my password\r\n").into_bytes()),
        // A charset nobody knows, and bytes that are not valid in the one declared.
        ("bad-charset@c", format!("From: {ANN}\r\nSubject: help\r\nMessage-ID: <bad-charset@c>\r\nContent-Type: text/plain; charset=klingon\r\n\r\nI forgot my password \u{fffd}\r\n").into_bytes()),
        ("wrong-charset@c", [format!("From: {ANN}\r\nSubject: help\r\nMessage-ID: <wrong-charset@c>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n").as_bytes(), b"mot de passe oubli\xe9\r\n"].concat()),
        // Huge headers (Postfix keeps 100 kB of them), and a body past the size cap.
        ("huge-header@c", format!("From: {ANN}\r\nSubject: help\r\nMessage-ID: <huge-header@c>\r\n{huge_header}{huge_header}\r\nI forgot my password\r\n").into_bytes()),
        ("too-big@c", format!("From: {ANN}\r\nSubject: help\r\nMessage-ID: <too-big@c>\r\n\r\n{}\r\n", "word ".repeat(20_000)).into_bytes()),
        // CRLF smuggled into an encoded display name and subject.
        ("crlf@c", format!("From: =?UTF-8?Q?Eve=0D=0ABcc:_victim@customers.example?= <{ANN}>\r\nSubject: =?UTF-8?Q?hi=0D=0ABcc:_victim@customers.example?=\r\nMessage-ID: <crlf@c>\r\n\r\nself help\r\n").into_bytes()),
    ];
    for (_, raw) in &cases {
        imap_client::send(smtp, Some(ANN), SUPPORT, raw).await.unwrap();
    }
    let store = frontdesk::store::Store::open(&frontdesk::store::Store::sqlite_url(data.path()), 2).await.unwrap();
    let mut outcomes = BTreeMap::new();
    for _ in 0..300 {
        outcomes.clear();
        for (key, _) in &cases {
            if let Some(o) = store.mail_outcome(key).await.unwrap() {
                outcomes.insert(*key, o);
            }
        }
        if outcomes.len() == cases.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcomes.len(), cases.len(), "every mail gets an outcome: {outcomes:?}\n{}", fd.logs());
    assert_eq!(outcomes["too-big@c"], ("answered".to_string(), Some("too_large".to_string()), None));
    for key in ["broken-mime@c", "bad-charset@c", "wrong-charset@c", "huge-header@c", "crlf@c"] {
        assert_eq!(outcomes[key].0, "answered", "{key}: {:?}", outcomes[key]);
    }
    // (Mail without a From: is covered by the ingest tests: Postfix adds one
    // from the envelope to mail from loopback.)
    // Six answers reach Ann, and no header was smuggled:
    // the victim's mailbox does not exist, so a Bcc would have bounced to
    // the support mailbox; and no answer carries a Bcc.
    let mails = wait_for(&servers, &mut fd, "ann", 6).await;
    for m in &mails {
        assert!(header(m, "Bcc").is_none());
        let subject = header(m, "Subject").unwrap();
        assert!(subject.starts_with("Re: "), "{subject}");
    }
    let too_big = mails.iter().find(|m| header(m, "In-Reply-To").as_deref() == Some("<too-big@c>")).unwrap();
    assert!(text(too_big).contains("too large"), "{}", text(too_big));
    fd.assert_running();
    assert!(!fd.logs().contains("panicked"), "{}", fd.logs());
    let left = imap_client::fetch_all(servers.imap_port, "support", "INBOX").await.unwrap();
    assert_eq!(left.len(), cases.len(), "handled mail stays in the inbox");
    assert!(imap_client::fetch_all(servers.imap_port, "support", "Processed").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_uidvalidity_rereads_the_mailbox_and_answers_nothing_twice() {
    let Some(mut servers) = servers(&["ann"]) else { return };
    let data = tempfile::tempdir().unwrap();
    // Mail stays in the inbox, so the re-read meets every mail again.
    let mut fd = Frontdesk::new(&servers, data.path(), &[("FRONTDESK__IMAP__PROCESSED_FOLDER", "")]);
    fd.start();
    for i in 0..3 {
        imap_client::send(
            servers.smtp_port,
            Some(ANN),
            SUPPORT,
            &mail(ANN, "self help", &format!("uv-{i}@c"), "", "articles"),
        )
        .await
        .unwrap();
    }
    wait_for(&servers, &mut fd, "ann", 3).await;
    let store = frontdesk::store::Store::open(&frontdesk::store::Store::sqlite_url(data.path()), 2).await.unwrap();
    let before = store.mail_checkpoint("INBOX").await.unwrap().expect("a checkpoint");

    // Dovecot loses its UID list (a restored backup, a rebuilt index): the
    // mailbox gets a new UIDVALIDITY and its mails new UIDs.
    servers.stop_dovecot();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let maildir = servers.maildir("support");
    for entry in std::fs::read_dir(&maildir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("dovecot") {
            let _ = std::fs::remove_file(&path);
        }
    }
    servers.start_dovecot().unwrap();
    imap_client::send(servers.smtp_port, Some(ANN), SUPPORT, &mail(ANN, "self help", "uv-new@c", "", "articles"))
        .await
        .unwrap();
    wait_for(&servers, &mut fd, "ann", 4).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = store.mail_checkpoint("INBOX").await.unwrap().unwrap();
    assert_ne!(after.uidvalidity, before.uidvalidity, "the test must really change UIDVALIDITY");
    let mails = imap_client::fetch_all(servers.imap_port, "ann", "INBOX").await.unwrap();
    let answered: Vec<String> = mails.iter().filter_map(|m| header(m, "In-Reply-To")).collect();
    assert_eq!(answered.len(), 4, "the three old mails are not answered again: {answered:?}");
    assert!(answered.contains(&"<uv-new@c>".to_string()));
    assert!(fd.logs().contains("UIDVALIDITY changed"), "{}", fd.logs());
    fd.assert_running();
}
