//! A customer's conversation as an agent reads it.

use crate::{
    engine::Outbound,
    store::{ConversationRow, Result, Store},
};

/// Who wrote a line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Speaker {
    Customer,
    Assistant,
    Agent(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub speaker: Speaker,
    pub text: String,
    /// An answer the channel has not delivered yet.
    pub pending: bool,
}

/// A conversation: its state, then its messages in order.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub conversation: ConversationRow,
    pub lines: Vec<Line>,
}

impl Transcript {
    pub async fn load(store: &Store, conversation: ConversationRow) -> Result<Transcript> {
        let mut lines = Vec::new();
        for m in store.transcript(conversation.id).await? {
            if m.direction == crate::store::Direction::In {
                let text = serde_json::from_str::<serde_json::Value>(&m.body)
                    .ok()
                    .and_then(|v| v["text"].as_str().map(str::to_string))
                    .unwrap_or_default();
                lines.push(Line { speaker: Speaker::Customer, text, pending: false });
            } else if let Ok(message) = serde_json::from_str::<Outbound>(&m.body) {
                let speaker = match &message {
                    Outbound::Text { by: Some(agent), .. } => Speaker::Agent(agent.clone()),
                    _ => Speaker::Assistant,
                };
                let text = crate::channels::terminal::render(&message).join("\n  ");
                lines.push(Line { speaker, text, pending: m.delivered_at.is_none() });
            }
        }
        Ok(Transcript { conversation, lines })
    }

    /// Plain text: the state, then the newest lines that fit in `max_chars`.
    pub fn render(&self, max_chars: usize) -> String {
        let row = &self.conversation;
        let mut head = format!(
            "Conversation {} · flow {} · {}",
            row.id,
            if row.flow.is_empty() { "-" } else { &row.flow },
            row.status
        );
        if let Some(reason) = &row.end_reason {
            head.push_str(&format!(" ({reason})"));
        }
        if let Some(agent) = &row.started_by {
            head.push_str(&format!(" · started by {agent}"));
        }
        let lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| {
                let who = match &l.speaker {
                    Speaker::Customer => "customer".to_string(),
                    Speaker::Assistant => "assistant".to_string(),
                    Speaker::Agent(a) => format!("agent {a}"),
                };
                let pending = if l.pending { " (not delivered yet)" } else { "" };
                format!("{who}{pending}: {}", l.text)
            })
            .collect();
        let mut budget = max_chars.saturating_sub(head.chars().count() + 40);
        let mut kept = Vec::new();
        for line in lines.iter().rev() {
            let n = line.chars().count() + 1;
            if n > budget {
                break;
            }
            budget -= n;
            kept.push(line.as_str());
        }
        kept.reverse();
        let mut out = head;
        if kept.len() < lines.len() {
            out.push_str(&format!("\n… {} earlier message(s) not shown", lines.len() - kept.len()));
        }
        for line in kept {
            out.push('\n');
            out.push_str(line);
        }
        out
    }
}
