//! What a conversation remembers: the journal replayed on every turn, the
//! prompt it is waiting on, and the messages it sends.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The per-conversation journal. A flow is re-run from the top on each turn;
/// every host call that needs the outside world takes its result from here
/// when the journal already holds it, so replay is deterministic and no
/// effect happens twice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// What the flow was started with (`params` in the script).
    #[serde(default)]
    pub params: Value,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

/// One recorded host call, in script order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", content = "v", rename_all = "snake_case")]
pub enum Entry {
    /// A message was sent (`say`).
    Say,
    /// The customer's accepted answer to a prompt.
    Answer(Value),
    /// A value the engine produced itself (`now`, `setting`, random tokens).
    Value(Value),
    /// The result of an async effect (lookup, mail, record).
    Effect { name: String, result: Result<Value, String> },
}

impl Entry {
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Say => "say",
            Entry::Answer(_) => "answer",
            Entry::Value(_) => "value",
            Entry::Effect { .. } => "effect",
        }
    }
}

/// A question the conversation waits on. `step` is the journal index its
/// answer will take, which identifies the question: a reply meant for an
/// older question (a second click on a button) is recognised as stale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub step: u32,
    pub text: String,
    pub kind: PromptKind,
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PromptKind {
    Text,
    Email,
    /// A phone number valid for `region` (ISO alpha-2), or international.
    Phone {
        region: Option<crate::domain::Country>,
    },
    Country,
    /// A postal code valid for `country` (ISO alpha-2).
    PostalCode {
        country: crate::domain::Country,
    },
    Choice {
        options: Vec<String>,
    },
    Confirm,
}

impl Prompt {
    /// The options a channel shows as buttons or a numbered list.
    pub fn options(&self) -> Vec<String> {
        match &self.kind {
            PromptKind::Choice { options } => options.clone(),
            PromptKind::Confirm => vec!["Yes".to_string(), "No".to_string()],
            _ => Vec::new(),
        }
    }
}

/// A message for the customer; each channel renders it natively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    /// Plain text. `private` content (contact lists, anything personal) is
    /// never shown in a public channel.
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        private: bool,
        /// The agent who wrote it, when a person did (not the assistant).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A question; `options` are empty for free-text answers.
    Prompt {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<String>,
        step: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        private: bool,
    },
    /// The conversation now belongs to a person.
    Handoff { reason: String },
}

impl Outbound {
    pub fn text(text: impl Into<String>) -> Outbound {
        Outbound::Text { text: text.into(), private: false, by: None }
    }

    pub fn prompt(p: &Prompt) -> Outbound {
        Outbound::Prompt { text: p.text.clone(), options: p.options(), step: p.step, private: p.private }
    }

    pub fn is_private(&self) -> bool {
        matches!(self, Outbound::Text { private: true, .. } | Outbound::Prompt { private: true, .. })
    }
}

impl PromptKind {
    /// Turns the customer's answer into the value the flow receives, or a
    /// sentence telling the customer why it was not accepted.
    pub fn accept(&self, input: &str) -> Result<Value, String> {
        use crate::{
            domain::{Country, EmailAddress, Phone},
            text,
        };
        // A parsed value reaches the flow as its canonical string.
        fn answer<T: Into<String>, E: std::fmt::Display>(parsed: Result<T, E>) -> Result<Value, String> {
            parsed.map(|v| Value::String(v.into())).map_err(|e| e.to_string())
        }
        match self {
            PromptKind::Text => {
                if input.trim().is_empty() {
                    Err("Please type an answer.".to_string())
                } else {
                    Ok(Value::String(input.trim().to_string()))
                }
            }
            PromptKind::Email => answer(EmailAddress::parse(input)),
            PromptKind::Phone { region } => answer(Phone::parse(input, region.as_ref())),
            PromptKind::Country => answer(Country::parse(input)),
            PromptKind::PostalCode { country } => {
                let code = input.trim().to_uppercase();
                text::check_postal_code(&code, country)
                    .map(|_| Value::String(code))
                    .map_err(|e| format!("{e}. Please check it and type it again."))
            }
            PromptKind::Choice { options } => {
                text::parse_choice(input, options).map(|i| Value::String(options[i].clone()))
            }
            // Channels show Yes and No as options 1 and 2.
            PromptKind::Confirm => match text::normalize_word(input).trim_start_matches('#') {
                "1" => Ok(Value::Bool(true)),
                "2" => Ok(Value::Bool(false)),
                _ => text::parse_yes_no(input).map(Value::Bool),
            },
        }
    }
}
