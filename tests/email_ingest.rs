//! `frontdesk email ingest` and the inbox folder `serve` reads without IMAP:
//! the same handling as mail fetched over IMAP, with answers written to
//! `<data>/mail/outbox/` when no SMTP server is configured.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use frontdesk::testing::imap_client::{header, text};

fn frontdesk(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.arg("--data").arg(data).current_dir(env!("CARGO_MANIFEST_DIR")).env("RUST_LOG", "warn");
    cmd
}

fn write(dir: &Path, name: &str, raw: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, raw.replace('\n', "\r\n")).unwrap();
    path
}

fn outbox(data: &Path) -> Vec<Vec<u8>> {
    let dir = data.join("mail/outbox");
    let mut files: Vec<_> =
        std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

const CUSTOMER: &str = "From: Ann Lee <ann.lee@acme.example>
To: support@frontdesk.example
Subject: I forgot my password
Message-ID: <ingest-1@acme.example>

Hello, I cannot log in.
";

const AUTO_REPLY: &str = "From: Bob <b.meyer@acme.example>
Subject: Automatic reply: your mail
Auto-Submitted: auto-replied
Message-ID: <ingest-2@acme.example>

I am out of the office.
";

const BOUNCE: &str = "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>
Return-Path: <>
Subject: Undelivered Mail Returned to Sender
Message-ID: <ingest-3@mx.acme.example>
Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: text/plain

The mail system could not deliver your message.
--b--
";

const NO_FROM: &str = "Subject: who am I
Message-ID: <ingest-4@acme.example>

hello
";

#[test]
fn ingest_answers_a_customer_and_not_machines() {
    let data = tempfile::tempdir().unwrap();
    let mails = tempfile::tempdir().unwrap();
    let files = [
        write(mails.path(), "customer.eml", CUSTOMER),
        write(mails.path(), "auto.eml", AUTO_REPLY),
        write(mails.path(), "bounce.eml", BOUNCE),
        write(mails.path(), "nofrom.eml", NO_FROM),
    ];
    let out = frontdesk(data.path()).args(["email", "ingest"]).args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].contains("customer.eml: answered (new conversation"), "{stdout}");
    assert!(
        lines[1].contains("auto.eml: skipped, no answer: automatic mail (Auto-Submitted: auto-replied)"),
        "{stdout}"
    );
    assert!(lines[2].contains("bounce.eml: skipped, no answer: bounce"), "{stdout}");
    assert!(lines[3].contains("nofrom.eml: skipped, no answer: no usable sender address"), "{stdout}");

    let sent = outbox(data.path());
    assert_eq!(sent.len(), 1, "one answer, to the customer only");
    assert_eq!(header(&sent[0], "To").as_deref(), Some("ann.lee@acme.example"));
    assert_eq!(header(&sent[0], "In-Reply-To").as_deref(), Some("<ingest-1@acme.example>"));
    assert_eq!(header(&sent[0], "Auto-Submitted").as_deref(), Some("auto-replied"));
    assert!(text(&sent[0]).contains("How would you like to find your company record?"), "{}", text(&sent[0]));

    // The same mail again: recognised, not answered twice. A missing file
    // is the one thing that makes the command fail.
    let again = frontdesk(data.path())
        .args(["email", "ingest"])
        .arg(&files[0])
        .arg(mails.path().join("missing.eml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("customer.eml: skipped: already handled"), "{stdout}");
    assert!(stdout.contains("missing.eml: cannot read"), "{stdout}");
    assert_eq!(outbox(data.path()).len(), 1);
}

#[test]
fn a_reply_continues_the_conversation() {
    let data = tempfile::tempdir().unwrap();
    let mails = tempfile::tempdir().unwrap();
    let first = write(mails.path(), "1.eml", CUSTOMER);
    assert!(frontdesk(data.path()).args(["email", "ingest"]).arg(&first).status().unwrap().success());
    let answer = outbox(data.path()).remove(0);
    let id = header(&answer, "Message-ID").unwrap();
    let subject = header(&answer, "Subject").unwrap();
    let reply = format!(
        "From: Ann Lee <ann.lee@acme.example>\nSubject: Re: {subject}\nMessage-ID: <ingest-5@acme.example>\n\
         In-Reply-To: {id}\nReferences: <ingest-1@acme.example> {id}\n\nemail address\n\n> How would you like to find your company record?\n"
    );
    let second = write(mails.path(), "2.eml", &reply);
    let out = frontdesk(data.path()).args(["email", "ingest"]).arg(&second).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2.eml: continued conversation"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sent = outbox(data.path());
    let next = sent.iter().find(|m| header(m, "In-Reply-To").as_deref() == Some("<ingest-5@acme.example>")).unwrap();
    assert!(text(next).contains("What is your e-mail address?"), "{}", text(next));
    assert_eq!(header(next, "Subject"), Some(subject));
}

#[test]
fn serve_reads_the_inbox_folder_without_imap() {
    let data = tempfile::tempdir().unwrap();
    let mut child = frontdesk(data.path())
        .arg("serve")
        .env("FRONTDESK__HTTP__LISTEN", "127.0.0.1:0")
        .env("FRONTDESK__EMAIL__INBOX_POLL_INTERVAL", "100ms")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let inbox = data.path().join("mail/inbox");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !inbox.join("new").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // As a delivery agent does: write into tmp/, rename into new/.
    std::fs::write(inbox.join("tmp/1700000000.M1.test"), CUSTOMER.replace('\n', "\r\n")).unwrap();
    std::fs::rename(inbox.join("tmp/1700000000.M1.test"), inbox.join("new/1700000000.M1.test")).unwrap();
    while outbox(data.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let sent = outbox(data.path());
    assert_eq!(sent.len(), 1);
    assert_eq!(header(&sent[0], "To").as_deref(), Some("ann.lee@acme.example"));
    assert!(inbox.join("cur/1700000000.M1.test:2,S").exists(), "handled mail moves to cur/, flagged seen");
    assert_eq!(std::fs::read_dir(inbox.join("new")).unwrap().count(), 0);
}

#[test]
fn an_agent_starts_a_flow_for_a_customer_by_mail_and_the_reply_continues_it() {
    let data = tempfile::tempdir().unwrap();
    let out = frontdesk(data.path())
        .args(["agent", "start", "self_help", "--for", "Ann.Lee@acme.example", "--agent", "bob", "--channel", "email"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let sent = outbox(data.path());
    assert_eq!(sent.len(), 1);
    assert_eq!(header(&sent[0], "To").as_deref(), Some("ann.lee@acme.example"));
    let subject = header(&sent[0], "Subject").unwrap();
    assert!(subject.starts_with("Your My Account request [ref:"), "{subject}");
    assert!(text(&sent[0]).contains("Which of these topics is closest to your question?"), "{}", text(&sent[0]));

    let id = header(&sent[0], "Message-ID").unwrap();
    let mails = tempfile::tempdir().unwrap();
    let reply = write(
        mails.path(),
        "reply.eml",
        &format!("From: ann.lee@acme.example\nSubject: Re: {subject}\nMessage-ID: <agent-reply@acme.example>\nIn-Reply-To: {id}\n\n1\n"),
    );
    let out = frontdesk(data.path()).args(["email", "ingest"]).arg(&reply).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("continued conversation"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Not an address: refused, nothing sent.
    let bad = frontdesk(data.path())
        .args(["agent", "start", "self_help", "--for", "ann", "--agent", "bob", "--channel", "email"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(outbox(data.path()).len(), 2);
}
