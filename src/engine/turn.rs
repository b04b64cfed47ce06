//! Plans one turn: from the open conversation and the customer's message to
//! the write that commits it and the messages to send once it has committed.

use serde_json::json;

use super::{
    effects::EffectContext,
    journal::{Journal, Outbound, Prompt},
    replay::{self, End, ReplayError, Replayed, TurnInput},
    Delivery, EngineError, Inbound, Inner, TurnReply,
};
use crate::{
    store::{ConversationRow, ConversationWrite, Direction, Holder, NewMessage, Status, TurnCommit},
    text::normalize_word,
};

pub(crate) struct Planned {
    pub commit: TurnCommit,
    pub reply: TurnReply,
    /// The commit only closed a stale conversation; run the message again.
    pub again: bool,
}

/// The words that work in any flow.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Word {
    Cancel,
    Restart,
    Human,
    Help,
}

fn classify(inner: &Inner, text: &str) -> Option<Word> {
    let w = normalize_word(text);
    let words = &inner.settings.words;
    let has = |list: &Vec<String>| list.contains(&w);
    if has(&words.cancel) {
        Some(Word::Cancel)
    } else if has(&words.restart) {
        Some(Word::Restart)
    } else if has(&words.human) {
        Some(Word::Human)
    } else if has(&words.help) {
        Some(Word::Help)
    } else {
        None
    }
}

/// The next state of a conversation, built up during a turn.
pub(super) struct Draft {
    pub(super) row: ConversationRow,
    /// The version and status the turn read, for an update; none for a new
    /// conversation.
    expected: Option<(i64, Status)>,
    messages: Vec<NewMessage>,
    deliveries: Vec<Delivery>,
    pub(super) writes: Vec<crate::store::Write>,
    now: i64,
}

impl Draft {
    pub(super) fn create(inbound: &Inbound, now: i64) -> Draft {
        let id = crate::store::new_conversation_id(now);
        Draft {
            row: ConversationRow {
                id,
                channel: inbound.channel.clone(),
                conv_key: inbound.conversation_key.clone(),
                sender: inbound.sender.clone(),
                verified: inbound.verified.clone(),
                started_by: None,
                flow: String::new(),
                flow_hash: String::new(),
                journal: "{}".to_string(),
                status: Status::Done,
                holder: Holder::Flow,
                prompt: None,
                end_reason: None,
                next_seq: 0,
                expires_at: None,
                wake_at: None,
                version: 1,
                created_at: now,
                updated_at: now,
            },
            expected: None,
            messages: Vec::new(),
            deliveries: Vec::new(),
            writes: Vec::new(),
            now,
        }
    }

    pub(super) fn resume(row: ConversationRow, now: i64) -> Draft {
        let expected = (row.version, row.status);
        let mut row = row;
        row.version += 1;
        row.updated_at = now;
        Draft { row, expected: Some(expected), messages: Vec::new(), deliveries: Vec::new(), writes: Vec::new(), now }
    }

    fn context(&self) -> EffectContext {
        EffectContext {
            conversation_id: self.row.id,
            channel: self.row.channel.clone(),
            sender: self.row.sender.clone(),
            verified: self.row.verified.clone(),
            flow: self.row.flow.clone(),
            now_ms: self.now,
            by_agent: self.row.started_by.clone(),
            hold: format!("{}:{}", self.row.id, self.row.version),
        }
    }

    fn inbound(&mut self, inbound: &Inbound, text: &str) {
        let body = json!({ "text": text, "sender": inbound.sender }).to_string();
        self.messages.push(NewMessage {
            seq: self.row.next_seq,
            direction: Direction::In,
            external_id: inbound.external_id.clone(),
            body,
            created_at: self.now,
            delivered_at: None,
        });
        self.row.next_seq += 1;
    }

    pub(super) fn out(&mut self, message: Outbound) {
        let seq = self.row.next_seq;
        self.row.next_seq += 1;
        self.messages.push(NewMessage {
            seq,
            direction: Direction::Out,
            external_id: None,
            body: serde_json::to_string(&message).expect("outbound messages serialize"),
            created_at: self.now,
            delivered_at: None,
        });
        self.deliveries.push(Delivery { conversation_id: self.row.id, seq, message });
    }

    /// The conversation's next status; whoever held it lets go (an agent
    /// taking it over says so after).
    pub(super) fn set_status(&mut self, status: Status, reason: Option<&str>) {
        self.row.status = status;
        self.row.holder = Holder::Flow;
        self.row.end_reason = reason.map(str::to_string);
        if status != Status::Waiting {
            self.row.prompt = None;
            self.row.expires_at = None;
        }
    }

    fn wait(&mut self, inner: &Inner, prompt: &Prompt) {
        self.set_status(Status::Waiting, None);
        self.row.prompt = Some(serde_json::to_string(prompt).expect("prompts serialize"));
        self.row.expires_at = Some(self.now + inner.settings.engine.idle_expiry.as_millis() as i64);
    }

    fn handoff(&mut self, inner: &Inner, reason: &str) {
        self.out(Outbound::text(&inner.settings.messages.handoff));
        self.out(Outbound::Handoff { reason: reason.to_string() });
        self.set_status(Status::HandedOff, Some("handed off"));
    }

    fn fail(&mut self, inner: &Inner, detail: &str) {
        tracing::error!(conversation = self.row.id, flow = %self.row.flow, channel = %self.row.channel, "flow failed: {detail}");
        self.out(Outbound::text(&inner.settings.messages.apology));
        self.set_status(Status::Failed, Some("flow error"));
    }

    /// Takes over what a replay produced.
    fn apply(&mut self, inner: &Inner, r: Replayed) {
        self.row.flow = r.flow.name.clone();
        self.row.flow_hash = r.flow.hash.clone();
        self.row.journal = serde_json::to_string(&r.journal).expect("journals serialize");
        self.writes.extend(r.writes);
        for o in r.outputs {
            self.out(o);
        }
        match r.end {
            End::Waiting(p) => self.wait(inner, &p),
            End::Finished => self.set_status(Status::Done, Some("finished")),
            End::HandedOff(reason) => self.handoff(inner, &reason),
            End::Failed(detail) => self.fail(inner, &detail),
        }
    }

    /// Runs a flow, turning a flow that cannot be loaded into a failed
    /// conversation rather than an error the customer never hears about.
    async fn run(
        &mut self,
        inner: &Inner,
        flow: Result<std::sync::Arc<super::flows::Flow>, super::flows::FlowError>,
        journal: Journal,
        input: TurnInput,
    ) -> Result<(), EngineError> {
        let flow = match flow {
            Ok(f) => f,
            Err(e) => {
                self.fail(inner, &e.to_string());
                return Ok(());
            }
        };
        self.row.flow = flow.name.clone();
        match replay::replay(inner, flow, journal, input, &self.context()).await {
            Ok(r) => self.apply(inner, r),
            Err(ReplayError { name, source }) => {
                tracing::warn!(conversation = self.row.id, effect = %name, "effect failed temporarily: {source:#}");
                return Err(EngineError::Effect(name));
            }
        }
        Ok(())
    }

    /// Starts the router on a fresh journal.
    async fn route(&mut self, inner: &Inner, message: &str) -> Result<(), EngineError> {
        let router = &inner.settings.engine.router_flow;
        let flow = inner.flows.current(router, self.now).await;
        let params = replay::with_context(json!({ "message": message }), &self.context());
        self.run(inner, flow, Journal { params, entries: Vec::new() }, TurnInput { text: None, answering_step: None })
            .await
    }

    /// Finishes a turn that took a customer's message: the channel's own
    /// writes commit with it, and a channel that answers through the outbox
    /// turns the replies into writes here, delivered as the turn commits.
    pub(super) fn finish_for(mut self, inbound: &Inbound) -> Planned {
        self.writes.extend(inbound.writes.iter().cloned());
        if let Some(sink) = &inbound.reply_sink {
            self.writes.extend((sink.0)(&self.deliveries));
            for m in self.messages.iter_mut().filter(|m| m.direction == Direction::Out) {
                m.delivered_at = Some(self.now);
            }
        }
        self.finish(false)
    }

    fn finish(self, again: bool) -> Planned {
        let status = Some(self.row.status);
        let conversation = match self.expected {
            None => ConversationWrite::Insert(self.row),
            Some((v, status)) => {
                ConversationWrite::Update { row: self.row, expected_version: v, expected_status: status }
            }
        };
        let id = conversation.row().id;
        Planned {
            commit: TurnCommit { conversation, messages: self.messages, writes: self.writes },
            reply: TurnReply {
                conversation_id: Some(id),
                messages: self.deliveries,
                status,
                duplicate: false,
                stale: false,
            },
            again,
        }
    }
}

fn stored_prompt(row: &ConversationRow) -> Result<Option<Prompt>, EngineError> {
    row.prompt
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| EngineError::Corrupt { id: row.id, detail: format!("prompt: {e}") })
}

pub(crate) async fn plan(
    inner: &Inner,
    open: Option<ConversationRow>,
    inbound: &Inbound,
    text: &str,
    now: i64,
) -> Result<Planned, EngineError> {
    let word = classify(inner, text);
    let Some(row) = open else {
        let mut d = Draft::create(inbound, now);
        d.inbound(inbound, text);
        match word {
            _ if text.is_empty() => {
                d.out(Outbound::text(&inner.settings.messages.unreadable));
                d.set_status(Status::Done, Some("unreadable"));
            }
            Some(Word::Cancel) => {
                d.out(Outbound::text(&inner.settings.messages.cancelled));
                d.set_status(Status::Done, Some("cancelled"));
            }
            Some(Word::Human) => d.handoff(inner, "customer asked for a person"),
            _ => d.route(inner, text).await?,
        }
        return Ok(d.finish_for(inbound));
    };

    let status = row.status;
    if status == Status::Waiting && row.expires_at.is_some_and(|t| t <= now) {
        // Expired but not yet swept: close it quietly; the message then
        // starts a new conversation.
        let mut d = Draft::resume(row, now);
        d.set_status(Status::Done, Some("expired"));
        return Ok(d.finish(true));
    }
    let prompt = stored_prompt(&row)?;
    let mut d = Draft::resume(row, now);
    d.inbound(inbound, text);
    let reshow = |d: &mut Draft| {
        if let Some(p) = &prompt {
            d.out(Outbound::prompt(p));
        }
    };
    match (status, word) {
        _ if text.is_empty() => {
            d.out(Outbound::text(&inner.settings.messages.unreadable));
            reshow(&mut d);
        }
        (_, Some(Word::Cancel)) => {
            d.out(Outbound::text(&inner.settings.messages.cancelled));
            d.set_status(Status::Done, Some("cancelled"));
        }
        (_, Some(Word::Restart)) => d.route(inner, "").await?,
        // An agent holding the conversation answers it; the assistant keeps quiet.
        (Status::HandedOff, _) if d.row.holder.agent().is_some() => {}
        (Status::HandedOff, _) => d.out(Outbound::text(&inner.settings.messages.handed_off_waiting)),
        (_, Some(Word::Human)) => d.handoff(inner, "customer asked for a person"),
        (_, Some(Word::Help)) => {
            d.out(Outbound::text(&inner.settings.messages.help));
            reshow(&mut d);
        }
        (Status::Waiting, None) => {
            let Some(p) = prompt else {
                return Err(EngineError::Corrupt { id: d.row.id, detail: "waiting without a prompt".into() });
            };
            if inbound.reply_to_step.is_some_and(|s| s != p.step) {
                d.out(Outbound::text(&inner.settings.messages.stale_reply));
                let mut planned = d.finish_for(inbound);
                planned.reply.stale = true;
                return Ok(planned);
            }
            let journal: Journal = serde_json::from_str(&d.row.journal)
                .map_err(|e| EngineError::Corrupt { id: d.row.id, detail: format!("journal: {e}") })?;
            let flow = inner.flows.pinned(&d.row.flow, &d.row.flow_hash).await;
            d.run(inner, flow, journal, TurnInput { text: Some(text.to_string()), answering_step: Some(p.step) })
                .await?;
        }
        (_, None) => {
            // Scheduled: the flow waits for a timer, not for the customer.
            d.out(Outbound::text(&inner.settings.messages.scheduled_waiting));
        }
    }
    Ok(d.finish_for(inbound))
}

/// An agent starts `flow` for a customer: their open conversation switches
/// to it, or a new one begins. The conversation remembers the agent, so every
/// effect it runs is audited as started by that agent.
pub(crate) async fn plan_agent_start(
    inner: &Inner,
    open: Option<ConversationRow>,
    customer: &Inbound,
    flow: &str,
    agent: &str,
    now: i64,
) -> Result<Planned, EngineError> {
    // An unknown or broken flow is the agent's mistake: tell them, change nothing.
    let flow = inner.flows.current(flow, now).await?;
    let mut d = match open {
        Some(row) => Draft::resume(row, now),
        None => Draft::create(customer, now),
    };
    d.row.started_by = Some(agent.to_string());
    d.writes.push(crate::store::Write::agent_audit(
        &customer.channel,
        agent,
        "agent_started_flow",
        &flow.name,
        json!({ "customer": customer.sender }),
    ));
    let params = replay::with_context(json!({ "started_by": agent }), &d.context());
    d.run(inner, Ok(flow), Journal { params, entries: Vec::new() }, TurnInput { text: None, answering_step: None })
        .await?;
    Ok(d.finish_for(customer))
}

/// Closes an idle conversation with the configured message.
pub(crate) fn expiry_commit(inner: &Inner, row: &ConversationRow, now: i64) -> TurnCommit {
    let mut d = Draft::resume(row.clone(), now);
    d.out(Outbound::text(&inner.settings.messages.expired));
    d.set_status(Status::Done, Some("expired"));
    d.finish(false).commit
}
