//! What an agent does to a customer's conversation besides starting a flow:
//! take it over, write in it, hand it back. Each is a turn like a customer's
//! message (same guarded commit, same retry on a concurrent turn), audited
//! with the agent's name.

use serde_json::json;

use super::{
    journal::Outbound,
    turn::{Draft, Planned},
    Inbound, Inner,
};
use crate::store::{ConversationRow, Holder, Status, Write};

/// The `end_reason` of a conversation an agent holds (for people reading
/// it; the holder itself is [`Holder::Agent`]): the assistant stays quiet in
/// it, where a conversation a flow handed off tells the customer a person
/// will come.
const TAKEN_OVER: &str = "taken over by agent:";

#[derive(Debug, Clone, Copy)]
pub(crate) enum AgentAction<'a> {
    TakeOver,
    /// Words of the agent for the customer; takes the conversation over first.
    Say(&'a str),
    HandBack,
}

impl AgentAction<'_> {
    fn audit_name(&self) -> &'static str {
        match self {
            AgentAction::TakeOver => "agent_took_over",
            AgentAction::Say(_) => "agent_wrote",
            AgentAction::HandBack => "agent_handed_back",
        }
    }
}

/// Plans an agent's action. `None`: there is nothing to do (handing back a
/// conversation nobody handed off); nothing is written.
pub(crate) fn plan(
    inner: &Inner,
    open: Option<ConversationRow>,
    customer: &Inbound,
    agent: &str,
    action: AgentAction<'_>,
    now: i64,
) -> Option<Planned> {
    let handed_off = open.as_ref().is_some_and(|r| r.status == Status::HandedOff);
    if matches!(action, AgentAction::HandBack) && !handed_off {
        return None;
    }
    let held = open.as_ref().is_some_and(|r| r.status == Status::HandedOff && r.holder.agent().is_some());
    let mut d = match open {
        Some(row) => Draft::resume(row, now),
        None => Draft::create(customer, now),
    };
    let take_over = |d: &mut Draft| {
        d.out(Outbound::Text { text: inner.settings.messages.taken_over.clone(), private: true, by: None });
        d.set_status(Status::HandedOff, Some(&format!("{TAKEN_OVER}{agent}")));
        d.row.holder = Holder::Agent(agent.to_string());
    };
    match action {
        AgentAction::TakeOver => take_over(&mut d),
        AgentAction::Say(text) => {
            if !held {
                take_over(&mut d);
            }
            d.out(Outbound::Text { text: text.to_string(), private: true, by: Some(agent.to_string()) });
        }
        AgentAction::HandBack => {
            d.out(Outbound::Text { text: inner.settings.messages.handed_back.clone(), private: true, by: None });
            d.set_status(Status::Done, Some(&format!("handed back by agent:{agent}")));
        }
    }
    let took_over = !held && !matches!(action, AgentAction::HandBack);
    let detail = json!({ "conversation": d.row.id, "took_over": took_over });
    d.writes.push(Write::agent_audit(&customer.channel, agent, action.audit_name(), &customer.sender, detail));
    Some(d.finish_for(customer))
}
