//! Row types shared by both backends.

use serde::{Deserialize, Serialize};

use super::read::{parsed, records, FieldError, Fields, Record};

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the customer to answer a prompt.
    Waiting,
    /// Waiting for a timer.
    Scheduled,
    Done,
    Failed,
    /// A person has it; the flow does not run.
    HandedOff,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Scheduled => "scheduled",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::HandedOff => "handed_off",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "waiting" => Status::Waiting,
            "scheduled" => Status::Scheduled,
            "done" => Status::Done,
            "failed" => Status::Failed,
            "handed_off" => Status::HandedOff,
            _ => return None,
        })
    }

    /// Open conversations receive the customer's next message.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Waiting | Status::Scheduled | Status::HandedOff)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value the database holds that no variant names.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?} in the store")]
pub struct Unknown {
    what: &'static str,
    value: String,
}

impl TryFrom<String> for Status {
    type Error = Unknown;

    fn try_from(value: String) -> Result<Status, Unknown> {
        Status::parse(&value).ok_or(Unknown { what: "conversation status", value })
    }
}

/// Which way a transcript message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the customer.
    In,
    /// To the customer.
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

impl TryFrom<String> for Direction {
    type Error = Unknown;

    fn try_from(value: String) -> Result<Direction, Unknown> {
        match value.as_str() {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            _ => Err(Unknown { what: "message direction", value }),
        }
    }
}

/// Who has a conversation that is with a person (status `handed_off`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Holder {
    /// The flow (or, handed off, nobody yet: a person will come).
    #[default]
    Flow,
    /// An agent took it over: the assistant stays quiet in it.
    Agent(String),
}

impl Holder {
    pub fn agent(&self) -> Option<&str> {
        match self {
            Holder::Flow => None,
            Holder::Agent(name) => Some(name),
        }
    }
}

impl From<Option<String>> for Holder {
    fn from(held_by: Option<String>) -> Holder {
        held_by.map_or(Holder::Flow, Holder::Agent)
    }
}

/// 2025-01-01T00:00:00Z in Unix milliseconds.
const ID_EPOCH_MS: i64 = 1_735_689_600_000;

/// A new conversation id: milliseconds since 2025 in the high bits, 22
/// random bits below (63 bits in all, good until 2094).
///
/// Time-ordered, so the conversations active now sit together at the right
/// edge of the table's and the transcript index's B-trees: a turn dirties the
/// same few pages as its neighbours, and checkpoints copy few pages. (Random
/// ids scattered every turn over the whole tree.) Two conversations drawing
/// the same id in the same millisecond, one chance in four million, conflict
/// on the primary key, and the turn retries with a new id.
pub fn new_conversation_id(now_ms: i64) -> i64 {
    let ms = (now_ms - ID_EPOCH_MS).clamp(1, (1 << 41) - 1);
    (ms << 22) | (rand::random::<i64>() & ((1 << 22) - 1))
}

#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub id: i64,
    pub channel: String,
    pub conv_key: String,
    pub sender: String,
    pub verified: Option<String>,
    /// The agent who started this conversation's flow for the customer.
    pub started_by: Option<String>,
    pub flow: String,
    pub flow_hash: String,
    pub journal: String,
    pub status: Status,
    /// The agent holding the conversation, if one took it over (`held_by`).
    pub holder: Holder,
    pub prompt: Option<String>,
    pub end_reason: Option<String>,
    pub next_seq: i64,
    pub expires_at: Option<i64>,
    pub wake_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record for ConversationRow {
    fn read(row: &impl Fields) -> Result<ConversationRow, FieldError> {
        Ok(ConversationRow {
            id: row.field("id")?,
            channel: row.field("channel")?,
            conv_key: row.field("conv_key")?,
            sender: row.field("sender")?,
            verified: row.field("verified")?,
            started_by: row.field("started_by")?,
            flow: row.field("flow")?,
            flow_hash: row.field("flow_hash")?,
            journal: row.field("journal")?,
            status: parsed(row, "status")?,
            holder: Holder::from(row.field::<Option<String>>("held_by")?),
            prompt: row.field("prompt")?,
            end_reason: row.field("end_reason")?,
            next_seq: row.field("next_seq")?,
            expires_at: row.field("expires_at")?,
            wake_at: row.field("wake_at")?,
            version: row.field("version")?,
            created_at: row.field("created_at")?,
            updated_at: row.field("updated_at")?,
        })
    }
}
records!(ConversationRow);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    #[sqlx(try_from = "String")]
    pub direction: Direction,
    pub channel: String,
    pub external_id: Option<String>,
    pub body: String,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

/// A phone column that may be empty (contacts, requests): `''` is none.
pub(super) fn optional_phone(row: &impl Fields, column: &str) -> Result<Option<crate::domain::Phone>, FieldError> {
    let value: String = row.field(column)?;
    if value.is_empty() {
        return Ok(None);
    }
    crate::domain::Phone::try_from(value).map(Some).map_err(|e| FieldError::new(column, e))
}
