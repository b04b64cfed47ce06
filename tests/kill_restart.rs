//! A real `frontdesk chat` process is killed with SIGKILL in the middle of a
//! turn (before its commit, after its commit but before the answer is shown)
//! at every turn of a conversation, then restarted. Whatever the moment, the
//! customer sees every answer exactly once and the store holds every message
//! exactly once.

mod common;

use std::{
    io::Write,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Command, Stdio},
};

const LINES: &[&str] = &["hi", "1", "2", "no", "2", "Germany", "yes", "hello?"];

struct Run {
    stdout: String,
    killed: bool,
}

fn chat(data: &Path, lines: &[&str], crash_at: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    cmd.arg("--data").arg(data).args(["chat", "--as", "ann"]).current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env_remove("FRONTDESK_CRASH_AT").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
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
    let killed = out.status.signal() == Some(libc_sigkill());
    if !killed {
        assert!(out.status.success(), "frontdesk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Run { stdout: String::from_utf8(out.stdout).unwrap(), killed }
}

fn libc_sigkill() -> i32 {
    9
}

async fn counts(data: &Path) -> (i64, i64) {
    use sqlx::Connection;
    let url = frontdesk::store::Store::sqlite_url(data);
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (inbound,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM messages WHERE direction = 'in'").fetch_one(&mut c).await.unwrap();
    let (outbound,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM messages WHERE direction = 'out'").fetch_one(&mut c).await.unwrap();
    (inbound, outbound)
}

#[tokio::test]
async fn a_killed_chat_resumes_without_losing_or_repeating_anything() {
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = chat(reference_dir.path(), LINES, None);
    assert!(!reference.killed);
    assert!(reference.stdout.contains("Customer Service, Europe, Middle East and Africa"), "{}", reference.stdout);
    let reference_counts = counts(reference_dir.path()).await;

    for turn in 1..=LINES.len() {
        for point in ["before_commit", "after_commit"] {
            let spec = format!("{point}:{turn}");
            let dir = tempfile::tempdir().unwrap();
            let first = chat(dir.path(), LINES, Some(&spec));
            assert!(first.killed, "{spec}: the process was not killed");

            // The customer goes on from the first message frontdesk did not
            // take in (a terminal customer types it again).
            let (taken, _) = counts(dir.path()).await;
            let second = chat(dir.path(), &LINES[taken as usize..], None);
            assert!(!second.killed);

            assert_eq!(
                format!("{}{}", first.stdout, second.stdout),
                reference.stdout,
                "{spec}: the customer saw something lost or repeated"
            );
            assert_eq!(counts(dir.path()).await, reference_counts, "{spec}: the store holds a lost or doubled message");
        }
    }
}
