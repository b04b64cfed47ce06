//! Row types shared by both backends.

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, sqlx::FromRow)]
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
    pub status: String,
    pub prompt: Option<String>,
    pub end_reason: Option<String>,
    pub next_seq: i64,
    pub expires_at: Option<i64>,
    pub wake_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub conversation_id: i64,
    pub seq: i64,
    pub direction: String,
    pub channel: String,
    pub external_id: Option<String>,
    pub body: String,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}
