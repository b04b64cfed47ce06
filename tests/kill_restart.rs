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

const LINES: &[&str] = &["I forgot my password", "1", "alee", "1", "2", "2", "no", "2", "Germany", "yes", "hello?"];
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
            // The process may be dead already; that is the point.
            if writeln!(stdin, "{l}").is_err() {
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

/// Inbound and outbound messages, queued mails, reset tokens, audit entries,
/// and mail files written.
async fn counts(data: &Path) -> [i64; 6] {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&frontdesk::store::Store::sqlite_url(data)).await.unwrap();
    let mut out = [0; 6];
    for (i, sql) in [
        "SELECT COUNT(*) FROM messages WHERE direction = 'in'",
        "SELECT COUNT(*) FROM messages WHERE direction = 'out'",
        "SELECT COUNT(*) FROM outbox",
        "SELECT COUNT(*) FROM recovery_tokens",
        "SELECT COUNT(*) FROM audit_log",
    ]
    .iter()
    .enumerate()
    {
        out[i] = sqlx::query_as::<_, (i64,)>(sql).fetch_one(&mut c).await.unwrap().0;
    }
    out[5] = std::fs::read_dir(data.join("mail/outbox")).map(|d| d.count() as i64).unwrap_or(0);
    out
}

#[tokio::test]
async fn a_killed_chat_resumes_without_losing_or_repeating_anything() {
    let reference_dir = tempfile::tempdir().unwrap();
    import(reference_dir.path());
    let reference = chat(reference_dir.path(), LINES, None);
    assert!(!reference.killed);
    assert!(reference.stdout.contains("Your login information is on its way"), "{}", reference.stdout);
    assert!(reference.stdout.contains("Customer Service, Europe, Middle East and Africa"), "{}", reference.stdout);
    let reference_counts = counts(reference_dir.path()).await;
    assert_eq!(&reference_counts[2..], &[1, 1, 3, 1], "one mail, one token, three audit entries, one .eml");

    // Three effects run in this conversation: the search, the contact list, the mail.
    let points = (1..=LINES.len())
        .flat_map(|n| [format!("before_commit:{n}"), format!("after_commit:{n}")])
        .chain((1..=3).map(|n| format!("after_effect:{n}")));
    for spec in points {
        let dir = tempfile::tempdir().unwrap();
        import(dir.path());
        let first = chat(dir.path(), LINES, Some(&spec));
        assert!(first.killed, "{spec}: the process was not killed");

        // The customer goes on from the first message frontdesk did not take
        // in (a terminal customer types it again).
        let taken = counts(dir.path()).await[0];
        let second = chat(dir.path(), &LINES[taken as usize..], None);
        assert!(!second.killed);

        assert_eq!(
            format!("{}{}", first.stdout, second.stdout),
            reference.stdout,
            "{spec}: the customer saw something lost or repeated"
        );
        assert_eq!(counts(dir.path()).await, reference_counts, "{spec}: something was lost or done twice");
    }
}
