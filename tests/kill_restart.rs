//! A real `frontdesk chat` process is killed with SIGKILL in the middle of a
//! turn (after an effect was performed but before it was recorded, before the
//! turn's commit, after the commit but before the answer is shown) at every
//! turn of a login recovery, then restarted. Whatever the moment, the customer
//! sees every answer exactly once, the store holds every message exactly once,
//! and exactly one recovery mail and one reset token exist.

mod common;

use std::{
    io::Write,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Command, Stdio},
};

const RECOVERY: &[&str] = &["I forgot my password", "1", "alee", "1", "2", "2", "no", "2", "Germany", "yes", "hello?"];
const CREATE: &[&str] = &[
    "create a new account",
    "Umbrella Software GmbH",
    "Jill",
    "Valentine",
    "jill@umbrella.example",
    "{code}",
    "Germany",
    "Friedrichstrasse 100",
    "Berlin",
    "none",
    "10117",
    "030 2345678",
    "yes",
    "1",
];
const SIGKILL: i32 = 9;

struct Run {
    stdout: String,
    killed: bool,
}

fn frontdesk(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.arg("--data").arg(data).current_dir(env!("CARGO_MANIFEST_DIR")).env_remove("FRONTDESK_CRASH_AT");
    cmd
}

fn import(data: &Path) {
    let out = frontdesk(data).arg("import").arg(common::repo_path("tests/fixtures/directory")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

fn chat(data: &Path, lines: &[&str], crash_at: Option<&str>) -> Run {
    let mut cmd = frontdesk(data);
    cmd.args(["chat", "--as", "ann"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(point) = crash_at {
        cmd.env("FRONTDESK_CRASH_AT", point);
    }
    let mut child = cmd.spawn().expect("start frontdesk");
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            // The customer reads the code in their mailbox (the .eml spool).
            let line = if *l == "{code}" {
                match mailed_code(data, &mut child) {
                    Some(code) => code,
                    None => break,
                }
            } else {
                l.to_string()
            };
            // The process may be dead already; that is the point.
            if writeln!(stdin, "{line}").and_then(|_| stdin.flush()).is_err() {
                break;
            }
        }
    }
    let out = child.wait_with_output().expect("wait for frontdesk");
    let killed = out.status.signal() == Some(SIGKILL);
    if !killed {
        assert!(out.status.success(), "frontdesk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Run { stdout: String::from_utf8(out.stdout).unwrap(), killed }
}

/// The verification code mailed into the spool, once it is there; `None`
/// when the process died first (it was killed before the mail was queued).
fn mailed_code(data: &Path, child: &mut std::process::Child) -> Option<String> {
    let subject = regex::Regex::new(r"verification code: (\d{6})").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        for entry in std::fs::read_dir(data.join("mail/outbox")).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if let Some(c) = subject.captures(&text) {
                return Some(c[1].to_string());
            }
        }
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no verification code was mailed within 20 s");
}

/// Inbound and outbound messages, queued mails, reset tokens, audit entries,
/// companies, contacts, and mail files written.
async fn counts(data: &Path) -> [i64; 8] {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&frontdesk::store::Store::sqlite_url(data)).await.unwrap();
    let mut out = [0; 8];
    for (i, sql) in [
        "SELECT COUNT(*) FROM messages WHERE direction = 'in'",
        "SELECT COUNT(*) FROM messages WHERE direction = 'out'",
        "SELECT COUNT(*) FROM outbox",
        "SELECT COUNT(*) FROM recovery_tokens",
        "SELECT COUNT(*) FROM audit_log",
        "SELECT COUNT(*) FROM companies",
        "SELECT COUNT(*) FROM contacts",
    ]
    .iter()
    .enumerate()
    {
        out[i] = sqlx::query_as::<_, (i64,)>(sql).fetch_one(&mut c).await.unwrap().0;
    }
    out[7] = std::fs::read_dir(data.join("mail/outbox")).map(|d| d.count() as i64).unwrap_or(0);
    out
}

/// Ends the claims on queued mails, as the passing of their lease would;
/// how many there were.
async fn lapse_claims(data: &Path) -> u64 {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&frontdesk::store::Store::sqlite_url(data)).await.unwrap();
    let sql = "UPDATE outbox SET locked_until = NULL WHERE status = 'queued' AND locked_until IS NOT NULL";
    sqlx::query(sql).execute(&mut c).await.unwrap().rows_affected()
}

/// Runs `lines` once untouched, then once per crash point with a restart,
/// and checks that every run ends exactly like the untouched one.
async fn killed_at_every_point(lines: &[&str], effects: usize) -> [i64; 8] {
    let reference_dir = tempfile::tempdir().unwrap();
    import(reference_dir.path());
    let reference = chat(reference_dir.path(), lines, None);
    assert!(!reference.killed);
    let reference_counts = counts(reference_dir.path()).await;

    // Org IDs are drawn at random, so they differ from run to run.
    let org_ids = regex::Regex::new(r"ORG-\d{8}").unwrap();
    let same = |s: &str| org_ids.replace_all(s, "ORG-########").into_owned();
    let points = (1..=lines.len())
        .flat_map(|n| [format!("before_commit:{n}"), format!("after_commit:{n}")])
        .chain((1..=effects).map(|n| format!("after_effect:{n}")));
    for spec in points {
        let dir = tempfile::tempdir().unwrap();
        import(dir.path());
        let first = chat(dir.path(), lines, Some(&spec));
        assert!(first.killed, "{spec}: the process was not killed");

        // The customer goes on from the first message frontdesk did not take
        // in (a terminal customer types it again).
        let taken = counts(dir.path()).await[0];
        let second = chat(dir.path(), &lines[taken as usize..], None);
        assert!(!second.killed);

        assert_eq!(
            same(&format!("{}{}", first.stdout, second.stdout)),
            same(&reference.stdout),
            "{spec}: the customer saw something lost or repeated"
        );
        // The killed process's mail worker may have claimed a mail it never
        // sent: it stays reserved for one lease (20 s), by design, and the
        // restarted process exits before then. Let the lease lapse, and the
        // next worker's round sends it.
        if lapse_claims(dir.path()).await > 0 {
            assert!(!chat(dir.path(), &[], None).killed);
        }
        assert_eq!(counts(dir.path()).await, reference_counts, "{spec}: something was lost or done twice");
    }
    reference_counts
}

#[tokio::test]
async fn a_killed_login_recovery_resumes_without_losing_or_repeating_anything() {
    // Three effects: the search, the contact list, the mail.
    let counts = killed_at_every_point(RECOVERY, 3).await;
    let [_, _, mails, tokens, audit, companies, contacts, files] = counts;
    assert_eq!([mails, tokens, audit, files], [1, 1, 3, 1], "one mail, one token, three audit entries, one .eml");
    assert_eq!([companies, contacts], [3, 5], "the directory is unchanged");
}

#[tokio::test]
async fn a_killed_account_creation_resumes_without_duplicating_anything() {
    // Five effects: the code mailed, the code checked, the duplicate check,
    // the screening, the creation.
    let counts = killed_at_every_point(CREATE, 5).await;
    let [_, _, mails, tokens, _, companies, contacts, files] = counts;
    assert_eq!([mails, tokens, files], [2, 0, 2], "one code and one confirmation mail");
    assert_eq!([companies, contacts], [4, 6], "one company and one admin more");
}
