//! The conversation engine. It knows flows, conversations and the store, and
//! nothing about Discord, IMAP or terminals: channels hand it an [`Inbound`]
//! and render the [`Outbound`] messages it returns.
//!
//! One turn:
//! 1. find the open conversation for the channel's key (in-process cache,
//!    else the store);
//! 2. handle the words that work everywhere (cancel, start over, agent,
//!    help), or replay the flow with the customer's message;
//! 3. commit the new conversation state and the transcript rows in one
//!    guarded write ([`crate::store::writer`]); if another turn changed the
//!    conversation first, drop the cache entry and do it again on fresh state.
//!
//! Nothing reaches the customer before step 3 commits, so a crash anywhere in
//! a turn loses nothing and repeats nothing: the next attempt starts from the
//! last committed state.

mod agent;
mod clock;
pub mod effects;
pub mod flows;
mod host;
pub mod journal;
mod replay;
pub mod timing;
mod turn;

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

pub use clock::Clock;
pub use effects::{EffectCall, EffectContext, EffectError, Effects};
pub use journal::{Journal, Outbound, Prompt};

use crate::{
    config::Settings,
    store::{ConversationRow, Status, Store},
};

/// A customer's message, as a channel adapter hands it over.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub channel: String,
    /// The channel's conversation key: a DM channel, a mail thread, a terminal user.
    pub conversation_key: String,
    /// Who sent it (platform user id, e-mail address).
    pub sender: String,
    /// How the sender was verified, if at all (e.g. "dkim", "discord").
    pub verified: Option<String>,
    pub text: String,
    /// The platform's id for the message: a message delivered twice is answered once.
    pub external_id: Option<String>,
    /// The question this answers, when the channel knows (a button carries it).
    pub reply_to_step: Option<u32>,
    /// What the channel commits with this turn, so that the message counts as
    /// handled exactly when the turn does (a mailbox checkpoint, say).
    pub writes: Vec<crate::store::Write>,
    /// For channels that answer through the outbox: turns the replies into
    /// writes committed with the turn, and the replies count as delivered.
    pub reply_sink: Option<ReplySink>,
}

impl Inbound {
    /// A message with no platform id, no verification and nothing to commit
    /// beside the turn.
    pub fn new(channel: &str, conversation_key: &str, sender: &str, text: impl Into<String>) -> Inbound {
        Inbound {
            channel: channel.to_string(),
            conversation_key: conversation_key.to_string(),
            sender: sender.to_string(),
            verified: None,
            text: text.into(),
            external_id: None,
            reply_to_step: None,
            writes: Vec::new(),
            reply_sink: None,
        }
    }
}

/// Turns a turn's replies into writes (for the mail channel: one threaded
/// answer in the outbox). Called once per commit attempt, so it must not have
/// side effects of its own.
#[derive(Clone)]
pub struct ReplySink(pub Arc<ReplyFn>);

/// Each [`Delivery`] names its conversation and place in it.
pub type ReplyFn = dyn Fn(&[Delivery]) -> Vec<crate::store::Write> + Send + Sync;

impl std::fmt::Debug for ReplySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplySink(..)")
    }
}

/// A message for the customer, identified for delivery acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub conversation_id: i64,
    pub seq: i64,
    pub message: Outbound,
}

#[derive(Debug, Clone)]
pub struct TurnReply {
    pub conversation_id: Option<i64>,
    pub messages: Vec<Delivery>,
    pub status: Option<Status>,
    /// The inbound message had been processed before; nothing was done.
    pub duplicate: bool,
    /// The message answered a question that is no longer asked (a second
    /// click on an old button): it was recorded and refused.
    pub stale: bool,
}

impl TurnReply {
    /// A turn that wrote nothing.
    pub fn nothing() -> TurnReply {
        TurnReply { conversation_id: None, messages: Vec::new(), status: None, duplicate: false, stale: false }
    }
}

/// Errors a channel shows the customer as a short, safe sentence
/// ([`EngineError::user_message`]); the log gets the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("store unavailable: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("stored conversation {id} is unreadable: {detail}")]
    Corrupt { id: i64, detail: String },
    #[error("{0}")]
    Flow(#[from] flows::FlowError),
    #[error("effect failed: {0}")]
    Effect(String),
    #[error("conversation is too busy: {0} attempts lost to concurrent turns")]
    Contention(usize),
}

impl EngineError {
    pub fn user_message<'a>(&self, settings: &'a Settings) -> &'a str {
        match self {
            EngineError::Contention(_) | EngineError::Store(_) | EngineError::Effect(_) => &settings.messages.busy,
            EngineError::Corrupt { .. } | EngineError::Flow(_) => &settings.messages.apology,
        }
    }
}

/// What a turn does: take a customer's message, or start a flow for them.
#[derive(Clone, Copy)]
enum Turn<'a> {
    Message { inbound: &'a Inbound, text: &'a str },
    AgentStart { customer: &'a Inbound, flow: &'a str, agent: &'a str },
    Agent { customer: &'a Inbound, agent: &'a str, action: agent::AgentAction<'a> },
}

/// Called before each commit attempt; tests use it to line two turns up on
/// the same conversation state.
pub type CommitHook = Arc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Most attempts a turn makes against concurrent turns before giving up.
const MAX_ATTEMPTS: usize = 16;
/// Conversation keys kept in memory; past this the cache starts afresh.
const CACHE_LIMIT: usize = 200_000;

pub(crate) struct Inner {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub flow_settings: Arc<serde_json::Value>,
    pub rhai: Arc<rhai::Engine>,
    pub flows: flows::Flows,
    pub effects: Effects,
    pub clock: Clock,
    /// What this instance last saw for each (channel, key): the open
    /// conversation, or `None` for "no open conversation". A stale entry is
    /// harmless: an update's version no longer matches, or an insert hits the
    /// one-open-conversation-per-key index; the commit conflicts, the entry
    /// is dropped and the turn runs again on what the store holds.
    cache: Mutex<HashMap<(String, String), Option<ConversationRow>>>,
    before_commit: Option<CommitHook>,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub struct EngineBuilder {
    store: Store,
    settings: Arc<Settings>,
    effects: Effects,
    clock: Clock,
    before_commit: Option<CommitHook>,
}

impl EngineBuilder {
    pub fn effects(mut self, effects: Effects) -> Self {
        self.effects = effects;
        self
    }

    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn before_commit(mut self, hook: CommitHook) -> Self {
        self.before_commit = Some(hook);
        self
    }

    pub fn build(self) -> Engine {
        let rhai = Arc::new(host::build_engine(&self.settings.engine, &self.effects.signatures()));
        let flows = flows::Flows::new(
            flows::FlowsSource::of(&self.settings.engine.flows_dir),
            rhai.clone(),
            self.store.clone(),
        );
        Engine {
            inner: Arc::new(Inner {
                flow_settings: Arc::new(self.settings.flow_settings.clone()),
                store: self.store,
                settings: self.settings,
                rhai,
                flows,
                effects: self.effects,
                clock: self.clock,
                cache: Mutex::new(HashMap::new()),
                before_commit: self.before_commit,
            }),
        }
    }
}

impl Engine {
    pub fn builder(store: Store, settings: Arc<Settings>) -> EngineBuilder {
        EngineBuilder { store, settings, effects: Effects::new(), clock: Clock::System, before_commit: None }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Compiles every flow now (at start-up); returns how many.
    pub async fn warm_up(&self) -> Result<usize, flows::FlowError> {
        self.inner.flows.warm_up(self.inner.clock.now_ms()).await
    }

    /// How many flow sources this engine compiled (each once).
    pub fn compilations(&self) -> usize {
        self.inner.flows.compilations()
    }

    /// Whether the flows can serve: the router flow loads and compiles.
    pub async fn check_flows(&self) -> Result<(), flows::FlowError> {
        self.inner.flows.current(&self.inner.settings.engine.router_flow, self.inner.clock.now_ms()).await.map(|_| ())
    }

    /// A script engine with the same sandbox and host functions, for
    /// checking flows without a store.
    pub fn script_engine_for(settings: &Settings, effects: &Effects) -> rhai::Engine {
        host::build_engine(&settings.engine, &effects.signatures())
    }

    /// Handles one customer message: runs the turn and returns what to send.
    pub async fn handle(&self, inbound: Inbound) -> Result<TurnReply, EngineError> {
        let text = crate::text::clean_input(&inbound.text, self.inner.settings.engine.max_input_chars);
        let key = (inbound.channel.clone(), inbound.conversation_key.clone());
        self.run_turn(&key, Turn::Message { inbound: &inbound, text: &text }).await
    }

    /// An agent starts `flow` for a customer (identified as the channel
    /// identifies them). What the flow says waits for the customer's channel
    /// like any other reply; the agent gets it back too, to see what was sent.
    pub async fn start_for(
        &self,
        channel: &str,
        customer: &str,
        flow: &str,
        agent: &str,
    ) -> Result<TurnReply, EngineError> {
        self.start_for_inbound(Inbound::new(channel, customer, customer, ""), flow, agent).await
    }

    /// [`Engine::start_for`] with the channel's own [`Inbound`]: its
    /// conversation key, and a [`ReplySink`] for channels that answer through
    /// the outbox (its text is ignored).
    pub async fn start_for_inbound(
        &self,
        customer: Inbound,
        flow: &str,
        agent: &str,
    ) -> Result<TurnReply, EngineError> {
        let key = (customer.channel.clone(), customer.conversation_key.clone());
        self.run_turn(&key, Turn::AgentStart { customer: &customer, flow, agent }).await
    }

    /// Runs a turn ([`Engine::commit_turn`]) and counts it in the metrics:
    /// by flow, channel and the status it left the conversation in.
    async fn run_turn(&self, key: &(String, String), what: Turn<'_>) -> Result<TurnReply, EngineError> {
        let started = std::time::Instant::now();
        let result = timing::timed(&key.0, self.commit_turn(key, what)).await;
        let (flow, outcome) = match &result {
            Ok((_, Some(row))) => (row.flow.as_str(), row.status.as_str()),
            Ok((reply, None)) if reply.duplicate => ("", "duplicate"),
            Ok((_, None)) => ("", "nothing"),
            Err(_) => ("", "error"),
        };
        crate::metrics::get().turn(flow, &key.0, outcome, started.elapsed().as_secs_f64());
        result.map(|(reply, _)| reply)
    }

    /// Plans a turn on the conversation's current state and commits it,
    /// planning again on fresh state whenever a concurrent turn won. Returns
    /// the reply, and the conversation as committed.
    async fn commit_turn(
        &self,
        key: &(String, String),
        what: Turn<'_>,
    ) -> Result<(TurnReply, Option<ConversationRow>), EngineError> {
        for attempt in 0..MAX_ATTEMPTS {
            let open = timing::step("load", self.load(key)).await?;
            let now = self.inner.clock.now_ms();
            let planned = match what {
                Turn::Message { inbound, text } => turn::plan(&self.inner, open, inbound, text, now).await?,
                Turn::AgentStart { customer, flow, agent } => {
                    turn::plan_agent_start(&self.inner, open, customer, flow, agent, now).await?
                }
                Turn::Agent { customer, agent, action } => {
                    match agent::plan(&self.inner, open, customer, agent, action, now) {
                        Some(planned) => planned,
                        None => return Ok((TurnReply::nothing(), None)),
                    }
                }
            };
            if let Some(hook) = &self.inner.before_commit {
                hook(attempt).await;
            }
            crate::crashpoint::hit("before_commit");
            let row = planned.commit.conversation.row().clone();
            match timing::step("commit", self.inner.store.commit(planned.commit)).await? {
                crate::store::CommitOutcome::Committed => {
                    crate::crashpoint::hit("after_commit");
                    self.remember(key, &row);
                    if planned.again {
                        // The turn only closed an expired conversation; the
                        // message itself starts a new one.
                        continue;
                    }
                    return Ok((planned.reply, Some(row)));
                }
                crate::store::CommitOutcome::Conflict => {
                    tracing::debug!(channel = %key.0, attempt, "turn lost to a concurrent turn; retrying on fresh state");
                    self.forget(key);
                }
                crate::store::CommitOutcome::Duplicate => {
                    return Ok((TurnReply { duplicate: true, ..TurnReply::nothing() }, None))
                }
            }
        }
        Err(EngineError::Contention(MAX_ATTEMPTS))
    }

    /// An agent takes a customer's conversation over (or opens one to talk
    /// to them): the assistant stops answering in it until it is handed back.
    pub async fn take_over(&self, customer: Inbound, agent: &str) -> Result<TurnReply, EngineError> {
        self.agent_turn(&customer, agent, agent::AgentAction::TakeOver).await
    }

    /// An agent writes to a customer, in their conversation (taking it over
    /// if the agent does not hold it yet).
    pub async fn agent_say(&self, customer: Inbound, agent: &str, text: &str) -> Result<TurnReply, EngineError> {
        self.agent_turn(&customer, agent, agent::AgentAction::Say(text)).await
    }

    /// An agent gives a handed-off conversation back to the assistant: it is
    /// closed with a note, and the customer's next message starts afresh.
    /// Returns no conversation when none was handed off.
    pub async fn hand_back(&self, customer: Inbound, agent: &str) -> Result<TurnReply, EngineError> {
        self.agent_turn(&customer, agent, agent::AgentAction::HandBack).await
    }

    async fn agent_turn(
        &self,
        customer: &Inbound,
        agent: &str,
        action: agent::AgentAction<'_>,
    ) -> Result<TurnReply, EngineError> {
        let key = (customer.channel.clone(), customer.conversation_key.clone());
        self.run_turn(&key, Turn::Agent { customer, agent, action }).await
    }

    /// Records that a channel delivered these messages.
    pub async fn delivered(&self, messages: &[Delivery]) -> Result<(), EngineError> {
        let ids = messages.iter().map(|d| (d.conversation_id, d.seq)).collect();
        Ok(self.inner.store.ack_delivered(ids, self.inner.clock.now_ms()).await?)
    }

    /// Claims `deliveries` for sending by this instance for `lease`, and
    /// returns those it won (in their order): the undelivered ones nobody
    /// else is sending. A channel sends only what it claimed, so instances
    /// sharing the store never send one message twice.
    pub async fn claim(&self, deliveries: &[Delivery], lease: Duration) -> Result<Vec<Delivery>, EngineError> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.inner.clock.now_ms();
        let ids: Vec<(i64, i64)> = deliveries.iter().map(|d| (d.conversation_id, d.seq)).collect();
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let won: HashSet<(i64, i64)> = self.inner.store.claim_sending(&ids, now, until).await?.into_iter().collect();
        Ok(deliveries.iter().filter(|d| won.contains(&(d.conversation_id, d.seq))).cloned().collect())
    }

    /// Gives back the claims on `deliveries`, which were not sent after all.
    pub async fn unclaim(&self, deliveries: &[Delivery]) -> Result<(), EngineError> {
        let ids: Vec<(i64, i64)> = deliveries.iter().map(|d| (d.conversation_id, d.seq)).collect();
        Ok(self.inner.store.release_sending(&ids).await?)
    }

    /// Messages committed but not yet acknowledged by the channel (after a
    /// crash, or produced by background work such as expiry), oldest first.
    pub async fn pending_deliveries(&self, channel: &str, key: &str) -> Result<Vec<Delivery>, EngineError> {
        let Some(conv) = self.inner.store.latest_conversation(channel, key).await? else {
            return Ok(Vec::new());
        };
        self.undelivered(conv.id).await
    }

    /// A conversation's messages not yet acknowledged by its channel, oldest
    /// first.
    pub async fn undelivered(&self, conversation_id: i64) -> Result<Vec<Delivery>, EngineError> {
        let rows = self.inner.store.undelivered(conversation_id).await?;
        rows.into_iter()
            .map(|m| {
                serde_json::from_str(&m.body)
                    .map(|message| Delivery { conversation_id: m.conversation_id, seq: m.seq, message })
                    .map_err(|e| EngineError::Corrupt { id: m.conversation_id, detail: e.to_string() })
            })
            .collect()
    }

    /// [`Engine::undelivered`] of each of `conversations`, one after the
    /// other (what a channel's sweep owes a member).
    pub async fn undelivered_in(&self, conversations: &[i64]) -> Result<Vec<Delivery>, EngineError> {
        let mut pending = Vec::new();
        for &id in conversations {
            pending.extend(self.undelivered(id).await?);
        }
        Ok(pending)
    }

    /// Tells the engine that `key` is new to the channel (a mail thread that
    /// starts with this message), so the turn need not look for an open
    /// conversation first. Safe when wrong: the insert then conflicts with
    /// the open conversation and the turn runs again on what the store holds.
    pub fn expect_new(&self, channel: &str, key: &str) {
        let key = (channel.to_string(), key.to_string());
        if !self.inner.cache.lock().expect("cache lock").contains_key(&key) {
            self.cache(&key, None);
        }
    }

    /// The open conversation for a key, if any.
    pub async fn open_conversation(&self, channel: &str, key: &str) -> Result<Option<ConversationRow>, EngineError> {
        Ok(self.inner.store.open_conversation(channel, key).await?)
    }

    /// Closes conversations idle past their expiry with a polite message.
    /// Returns how many were closed.
    pub async fn expire_idle(&self) -> Result<usize, EngineError> {
        let now = self.inner.clock.now_ms();
        let mut closed = 0;
        loop {
            let batch = self.inner.store.expired_conversations(now, 500).await?;
            if batch.is_empty() {
                return Ok(closed);
            }
            let n = batch.len();
            for row in batch {
                let commit = turn::expiry_commit(&self.inner, &row, now);
                if self.inner.store.commit(commit).await? == crate::store::CommitOutcome::Committed {
                    closed += 1;
                    self.forget(&(row.channel.clone(), row.conv_key.clone()));
                }
            }
            if n < 500 {
                return Ok(closed);
            }
        }
    }

    async fn load(&self, key: &(String, String)) -> Result<Option<ConversationRow>, EngineError> {
        if let Some(known) = self.inner.cache.lock().expect("cache lock").get(key) {
            return Ok(known.clone());
        }
        let row = self.inner.store.open_conversation(&key.0, &key.1).await?;
        self.cache(key, row.clone());
        Ok(row)
    }

    /// Remembers a conversation's state after a commit.
    fn remember(&self, key: &(String, String), row: &ConversationRow) {
        let open = row.status.is_open();
        self.cache(key, open.then(|| row.clone()));
    }

    fn cache(&self, key: &(String, String), row: Option<ConversationRow>) {
        let mut cache = self.inner.cache.lock().expect("cache lock");
        if cache.len() >= CACHE_LIMIT && !cache.contains_key(key) {
            cache.clear();
        }
        cache.insert(key.clone(), row);
    }

    fn forget(&self, key: &(String, String)) {
        self.inner.cache.lock().expect("cache lock").remove(key);
    }
}
