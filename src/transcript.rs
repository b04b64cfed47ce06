//! Transcript tests for flows: a conversation written down the way it should
//! go, checked against the real engine and a real (temporary) store.
//!
//! ```text
//! # Lines starting with # are comments.
//! @as ann                  the customer's identity (default: customer)
//! > I need the article     what the customer says
//! < Which of these topics is closest to your question?
//! <   1. Updating company and contact information
//! < ...                    "..." stands for any text within a line
//! @advance 25h             move the clock
//! @expire                  run idle expiry; '<' lines then match what it sent
//! @status handed_off       the customer's latest conversation has this status
//! @import tests/fixtures/directory   load a directory (CSV folder) into the store
//! @jobs                    run the follow-ups due now ('! mail' lines may follow)
//! ! mail to=ann@acme.example template=login_info
//!                          the last turn queued exactly these mails, in order
//! > {code}                 the code of the latest verification mail (email_code)
//! ```
//!
//! Every `>` line is followed by the exact lines frontdesk must answer, as
//! `frontdesk chat` prints them. A mismatch reports `file:line` and a diff.

use std::{path::Path, sync::Arc, time::Duration};

use crate::{
    channels::terminal::{render, CHANNEL},
    config::Settings,
    engine::{Clock, Delivery, Engine, Inbound},
    store::Store,
};

/// 2026-01-05 09:00 UTC, a Monday: transcripts run on a fixed clock.
pub const TRANSCRIPT_EPOCH_MS: i64 = 1_767_603_600_000;

enum Step {
    Say { line: usize, text: String },
    Advance(Duration),
    Expire { line: usize },
    As(String),
    Status { line: usize, status: String },
    Import { line: usize, dir: String },
    Jobs { line: usize },
}

/// A mail a transcript expects a turn to have queued.
#[derive(Debug, Clone, PartialEq)]
struct ExpectedMail {
    to: String,
    template: String,
}

struct Script {
    steps: Vec<(Step, Vec<String>, Vec<ExpectedMail>)>,
}

/// Reads a transcript without running it: `Ok(steps)`, or the first
/// `file:line: problem`.
pub fn check_syntax(text: &str, file: &str) -> Result<usize, String> {
    parse(text, file).map(|s| s.steps.len())
}

fn parse(text: &str, file: &str) -> Result<Script, String> {
    let mut steps: Vec<(Step, Vec<String>, Vec<ExpectedMail>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('<') {
            let expected = rest.strip_prefix(' ').unwrap_or(rest).to_string();
            match steps.last_mut() {
                Some((Step::Say { .. } | Step::Expire { .. }, lines, _)) => lines.push(expected),
                _ => return Err(format!("{file}:{n}: a '<' line must follow a '>' line or @expire")),
            }
        } else if let Some(rest) = line.strip_prefix("! mail ") {
            let mut to = None;
            let mut template = None;
            for part in rest.split_whitespace() {
                match part.split_once('=') {
                    Some(("to", v)) => to = Some(v.to_string()),
                    Some(("template", v)) => template = Some(v.to_string()),
                    _ => return Err(format!("{file}:{n}: '! mail' takes to=ADDRESS template=NAME")),
                }
            }
            let (Some(to), Some(template)) = (to, template) else {
                return Err(format!("{file}:{n}: '! mail' needs to= and template="));
            };
            match steps.last_mut() {
                Some((Step::Say { .. } | Step::Jobs { .. }, _, mails)) => mails.push(ExpectedMail { to, template }),
                _ => return Err(format!("{file}:{n}: a '! mail' line must follow a '>' turn or @jobs")),
            }
        } else if let Some(rest) = line.strip_prefix('>') {
            steps.push((
                Step::Say { line: n, text: rest.strip_prefix(' ').unwrap_or(rest).to_string() },
                Vec::new(),
                Vec::new(),
            ));
        } else if let Some(rest) = line.strip_prefix("@as ") {
            steps.push((Step::As(rest.trim().to_string()), Vec::new(), Vec::new()));
        } else if let Some(rest) = line.strip_prefix("@advance ") {
            let d = humantime::parse_duration(rest.trim()).map_err(|e| format!("{file}:{n}: @advance: {e}"))?;
            steps.push((Step::Advance(d), Vec::new(), Vec::new()));
        } else if line.trim() == "@expire" {
            steps.push((Step::Expire { line: n }, Vec::new(), Vec::new()));
        } else if let Some(rest) = line.strip_prefix("@status ") {
            steps.push((Step::Status { line: n, status: rest.trim().to_string() }, Vec::new(), Vec::new()));
        } else if line.trim() == "@jobs" {
            steps.push((Step::Jobs { line: n }, Vec::new(), Vec::new()));
        } else if let Some(rest) = line.strip_prefix("@import ") {
            steps.push((Step::Import { line: n, dir: rest.trim().to_string() }, Vec::new(), Vec::new()));
        } else {
            return Err(format!("{file}:{n}: cannot read this line (expected '>', '<', '#' or an @directive)"));
        }
    }
    Ok(Script { steps })
}

/// The code in the latest verification mail still in the outbox (what a
/// customer would read in their mailbox).
pub async fn latest_email_code(store: &Store) -> Result<Option<String>, crate::store::StoreError> {
    let entries = crate::mail::outbox::entries(store).await?;
    Ok(entries.iter().rev().filter(|e| e.template == "email_code").find_map(|e| {
        let context: serde_json::Value = serde_json::from_str(&e.context).ok()?;
        context["code"].as_str().map(str::to_string)
    }))
}

/// Whether an actual line matches an expected one, where `...` matches any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    if !expected.contains("...") {
        return expected == actual;
    }
    let parts: Vec<&str> = expected.split("...").collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() || !actual.ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn compare(file: &str, line: usize, what: &str, expected: &[String], actual: &[String]) -> Result<(), String> {
    let same = expected.len() == actual.len() && expected.iter().zip(actual).all(|(e, a)| line_matches(e, a));
    if same {
        return Ok(());
    }
    let exp = expected.join("\n") + "\n";
    let act = actual.join("\n") + "\n";
    let diff = similar::TextDiff::from_lines(&exp, &act).unified_diff().header("expected", "actual").to_string();
    Err(format!("{file}:{line}: after {what}, frontdesk answered differently:\n{diff}"))
}

fn rendered(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().flat_map(|d| render(&d.message)).collect()
}

/// Runs one transcript file against a fresh store in a temporary folder.
pub async fn run_file(path: &Path, settings: Arc<Settings>) -> Result<(), String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let script = parse(&text, &file)?;
    let dir = tempfile::tempdir().map_err(|e| format!("{file}: temp dir: {e}"))?;
    let store = Store::open(&Store::sqlite_url(dir.path()), 2).await.map_err(|e| format!("{file}: store: {e:#}"))?;
    let clock = Clock::manual(TRANSCRIPT_EPOCH_MS);
    let engine = Engine::builder(store.clone(), settings.clone())
        .effects(crate::app::effects(&store, &settings))
        .clock(clock.clone())
        .build();
    let mut who = "customer".to_string();
    let result = async {
        let mut mails_seen = 0usize;
        for (step, expected, expected_mails) in script.steps {
            match step {
                Step::Import { line, dir } => {
                    let report = crate::directory::import::import_dir(
                        &store,
                        Path::new(&dir),
                        &Default::default(),
                        clock.now_ms(),
                    )
                    .await
                    .map_err(|e| format!("{file}:{line}: @import {dir}: {e:#}"))?;
                    if report.rejected() {
                        return Err(format!(
                            "{file}:{line}: @import {dir}: bad rows: {:?}",
                            report.files.iter().flat_map(|f| f.bad.clone()).collect::<Vec<_>>()
                        ));
                    }
                }
                Step::As(name) => who = name,
                Step::Advance(d) => clock.advance(d),
                Step::Say { line, text } => {
                    let typed = if text.contains("{code}") {
                        let code = latest_email_code(&store)
                            .await
                            .map_err(|e| format!("{file}:{line}: {e}"))?
                            .ok_or_else(|| format!("{file}:{line}: {{code}}, but no verification code was mailed"))?;
                        text.replace("{code}", &code)
                    } else {
                        text.clone()
                    };
                    let reply = engine
                        .handle(Inbound::new(CHANNEL, &who, &who, typed))
                        .await
                        .map_err(|e| format!("{file}:{line}: the turn failed: {e}"))?;
                    engine.delivered(&reply.messages).await.map_err(|e| format!("{file}:{line}: {e}"))?;
                    compare(&file, line, &format!("\"> {text}\""), &expected, &rendered(&reply.messages))?;
                    check_mails(&store, &file, line, &format!("\"> {text}\""), &expected_mails, &mut mails_seen)
                        .await?;
                }
                Step::Jobs { line } => {
                    crate::account::followup::run_due(&store, &settings, clock.now_ms())
                        .await
                        .map_err(|e| format!("{file}:{line}: @jobs: {e:#}"))?;
                    check_mails(&store, &file, line, "@jobs", &expected_mails, &mut mails_seen).await?;
                }
                Step::Expire { line } => {
                    engine.expire_idle().await.map_err(|e| format!("{file}:{line}: {e}"))?;
                    let pending =
                        engine.pending_deliveries(CHANNEL, &who).await.map_err(|e| format!("{file}:{line}: {e}"))?;
                    engine.delivered(&pending).await.map_err(|e| format!("{file}:{line}: {e}"))?;
                    compare(&file, line, "@expire", &expected, &rendered(&pending))?;
                }
                Step::Status { line, status } => {
                    let conv =
                        store.latest_conversation(CHANNEL, &who).await.map_err(|e| format!("{file}:{line}: {e}"))?;
                    let actual = conv.map_or("none", |c| c.status.as_str());
                    if actual != status {
                        return Err(format!("{file}:{line}: expected status {status}, the conversation is {actual}"));
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}

/// Checks that exactly `expected` were queued since the last check.
async fn check_mails(
    store: &Store,
    file: &str,
    line: usize,
    after: &str,
    expected: &[ExpectedMail],
    seen: &mut usize,
) -> Result<(), String> {
    let queued = queued_mails(store).await.map_err(|e| format!("{file}:{line}: {e}"))?;
    let new = &queued[(*seen).min(queued.len())..];
    *seen = queued.len();
    if new == expected {
        return Ok(());
    }
    let show =
        |m: &[ExpectedMail]| m.iter().map(|m| format!("to={} template={}", m.to, m.template)).collect::<Vec<_>>();
    Err(format!("{file}:{line}: after {after}, expected mails {:?}, queued {:?}", show(expected), show(new)))
}

/// Every mail in the outbox, in the order queued.
async fn queued_mails(store: &Store) -> Result<Vec<ExpectedMail>, crate::store::StoreError> {
    let entries = crate::mail::outbox::entries(store).await?;
    Ok(entries.into_iter().map(|e| ExpectedMail { to: e.to_addr, template: e.template }).collect())
}

/// The transcript files at `path`: the file itself, or every `*.chat` below a folder.
pub fn find(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        if p.is_dir() {
            files.extend(find(&p)?);
        } else if p.extension().is_some_and(|e| e == "chat") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(line_matches("Hello ... world", "Hello big world"));
        assert!(line_matches("...", "anything"));
        assert!(line_matches("a...b...c", "a1b2c"));
        assert!(!line_matches("a...b...c", "a1c2b"));
        assert!(!line_matches("exact", "exact!"));
    }
}
