//! The terminal channel: `frontdesk chat`. Bot messages go to stdout, one
//! block per message, choices as numbered lines; notes about the session
//! (resuming, errors) go to stderr so that piped output is exactly the
//! conversation.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context as _;

use crate::engine::{Delivery, Engine, Inbound, Outbound};

pub const CHANNEL: &str = "terminal";

/// The lines a message shows as in a terminal (and in transcript tests).
pub fn render(message: &Outbound) -> Vec<String> {
    match message {
        Outbound::Text { text, .. } => text.lines().map(str::to_string).collect(),
        Outbound::Prompt { text, options, .. } => {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.extend(options.iter().enumerate().map(|(i, o)| format!("  {}. {o}", i + 1)));
            lines
        }
        Outbound::Handoff { .. } => {
            vec!["[a customer service agent will take over this conversation]".to_string()]
        }
    }
}

fn print(out: &mut impl Write, deliveries: &[Delivery]) -> std::io::Result<()> {
    for d in deliveries {
        for line in render(&d.message) {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()
}

/// Runs a conversation between the terminal and the engine until stdin ends.
pub async fn chat(engine: &Engine, identity: &str) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let interactive = std::io::stdin().is_terminal();

    // A previous run may have been killed after committing a turn but before
    // showing it, and background work (expiry) may have written since.
    let pending = engine.pending_deliveries(CHANNEL, identity).await?;
    if !pending.is_empty() {
        eprintln!("(continuing where we left off)");
        print(&mut stdout.lock(), &pending)?;
        engine.delivered(&pending).await?;
    } else if let Some(open) = engine.open_conversation(CHANNEL, identity).await? {
        if let Some(p) = open.prompt.as_deref().and_then(|p| serde_json::from_str::<crate::engine::Prompt>(p).ok()) {
            eprintln!("(continuing where we left off; the last question was:)");
            for line in render(&Outbound::prompt(&p)) {
                eprintln!("{line}");
            }
        }
    }

    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(16);
    std::thread::spawn(move || {
        // By bytes, not `lines()`: a line that is not UTF-8 (Latin-1 from an
        // old terminal, a pasted binary) is still the customer's words, read
        // with replacement characters, not the end of the conversation.
        for line in std::io::stdin().lock().split(b'\n') {
            let line = line.map(|bytes| {
                let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
                String::from_utf8_lossy(bytes).into_owned()
            });
            let stop = line.is_err();
            if tx.blocking_send(line).is_err() || stop {
                break;
            }
        }
    });
    loop {
        if interactive {
            eprint!("you> ");
        }
        let Some(line) = rx.recv().await else { break };
        let line = line.context("reading stdin")?;
        let inbound = Inbound::new(CHANNEL, identity, identity, line);
        match engine.handle(inbound).await {
            Ok(reply) => {
                print(&mut stdout.lock(), &reply.messages)?;
                crate::crashpoint::hit("after_deliver");
                engine.delivered(&reply.messages).await?;
            }
            Err(e) => {
                tracing::error!(error = %e, "turn failed");
                let mut out = stdout.lock();
                writeln!(out, "{}", e.user_message(engine.settings()))?;
                out.flush()?;
            }
        }
    }
    Ok(())
}
