//! The Discord channel, on serenity's gateway client.
//!
//! Customers write in a support channel or to the bot directly; their
//! conversation (keyed by their user id) continues in a private place
//! ([`places`]): a private thread or DMs. The public channel only ever gets
//! a fixed notice pointing there, so nothing personal is shown in public.
//! Choices are buttons or select menus ([`render`]); agents use the
//! `/frontdesk` slash commands ([`commands`]).
//!
//! Delivery: a turn commits first, then its messages are sent and marked
//! delivered one by one. What could not be sent (an API error after retries,
//! a crash in between) stays undelivered and goes out before the member's
//! next turn, or from the redelivery sweep.

mod commands;
mod places;
pub mod render;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use serenity::all::{
    ActionRowComponent, ButtonKind, ChannelId, Client, ComponentInteraction, ComponentInteractionDataKind, Context,
    CreateAllowedMentions, CreateInteractionResponse, CreateInteractionResponseMessage, CreateMessage,
    EditInteractionResponse, EventHandler, GatewayIntents, GuildId, Http, HttpBuilder, Interaction, Message,
    MessageType, Ready, ResumedEvent, UserId,
};

use crate::{
    config::{DiscordPrivate, DiscordSettings, Settings},
    engine::{Delivery, Engine, EngineError, Inbound, Outbound},
    store::StoreError,
};
use render::Custom;

pub const CHANNEL: &str = "discord";

/// Discord's JSON error codes we act on.
const UNKNOWN_CHANNEL: isize = 10003;
const CANNOT_DM: isize = 50007;

/// Undelivered messages older than this are left alone by the sweep.
const GIVE_UP_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("Discord API: {0}")]
    Rest(#[from] Box<serenity::Error>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Corrupt(String),
}

impl DiscordError {
    /// Discord's JSON error code, when the API refused the call.
    fn code(&self) -> Option<isize> {
        match self {
            DiscordError::Rest(e) => match e.as_ref() {
                serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => Some(r.error.code),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Whether a failed call may succeed when tried again: Discord's own
/// trouble (5xx), a rate limit, or the network.
fn retryable(e: &serenity::Error) -> bool {
    use serenity::http::HttpError;
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            r.status_code.is_server_error() || r.status_code.as_u16() == 429
        }
        serenity::Error::Http(HttpError::Request(_)) => true,
        _ => false,
    }
}

/// Calls the REST API up to `attempts` times, waiting 250 ms, 500 ms, …
/// between tries of a retryable failure.
pub(crate) async fn rest<T, F, Fut>(attempts: u32, mut call: F) -> Result<T, DiscordError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = serenity::Result<T>>,
{
    let mut wait = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < attempts && retryable(&e) => {
                tracing::warn!(attempt, "Discord call failed; retrying: {e}");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            Err(e) => return Err(DiscordError::Rest(Box::new(e))),
        }
    }
}

/// Where a customer's message was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A support channel: answers go to the private place, a notice here.
    Public,
    /// Their private thread, or a DM: answers go right there.
    Private,
}

/// The adapter: cheap to clone, shared by every event task.
#[derive(Clone)]
pub struct Discord {
    inner: Arc<Shared>,
}

struct Shared {
    engine: Engine,
    settings: Arc<Settings>,
    config: DiscordSettings,
    places: places::Places,
    /// One lock per member: their turns and the sends that follow them do
    /// not interleave, so messages arrive in order and nothing is sent twice.
    locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

impl Discord {
    pub fn new(engine: Engine, settings: Arc<Settings>) -> anyhow::Result<Discord> {
        let config = settings.discord.clone().context("Discord is not configured ([discord] guild_id)")?;
        let places = places::Places::new(engine.store().clone(), config.private, config.send_attempts);
        Ok(Discord { inner: Arc::new(Shared { engine, settings, config, places, locks: Mutex::default() }) })
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn config(&self) -> &DiscordSettings {
        &self.inner.config
    }

    fn now(&self) -> i64 {
        self.inner.engine.clock().now_ms()
    }

    async fn lock(&self, user: UserId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.locks.lock().expect("member locks");
            if locks.len() > 10_000 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(user.get()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn customer(user: UserId, text: &str) -> Inbound {
        let mut inbound = Inbound::new(CHANNEL, &user.to_string(), &user.to_string(), text);
        inbound.verified = Some("discord".into());
        inbound
    }

    /// A support channel to open private threads in when the member wrote
    /// nowhere in particular (an agent started a flow, a redelivery).
    fn default_support(&self) -> ChannelId {
        ChannelId::new(self.config().support_channels[0])
    }

    /// Sends a fixed text (no personal data in it) to a channel, once.
    async fn notice(&self, http: &Http, channel: ChannelId, text: &str) {
        let m = CreateMessage::new().content(text).allowed_mentions(CreateAllowedMentions::new());
        if let Err(e) = channel.send_message(http, m).await {
            tracing::warn!(channel = %channel, "could not post a notice: {e}");
        }
    }

    /// Sends a turn's messages to the member's place, marking each delivered
    /// as soon as it is sent.
    async fn deliver(
        &self,
        http: &Http,
        user: UserId,
        target: ChannelId,
        deliveries: &[Delivery],
    ) -> Result<(), DiscordError> {
        for d in deliveries {
            for m in render::messages(&d.message) {
                let sent = rest(self.config().send_attempts, || target.send_message(http, m.clone())).await;
                if let Err(e) = sent {
                    if e.code() == Some(UNKNOWN_CHANNEL) {
                        // The thread was deleted: the next message opens a new one.
                        self.inner.places.forget(user, target).await?;
                    }
                    return Err(e);
                }
            }
            if let (Outbound::Handoff { reason }, Some(staff)) = (&d.message, self.config().agent_channel) {
                let text = format!("<@{user}> needs a person ({}): <#{target}>", render::escape(reason));
                self.notice(http, ChannelId::new(staff), &text).await;
            }
            self.engine().delivered(std::slice::from_ref(d)).await?;
        }
        Ok(())
    }

    /// Sends what an earlier turn (or background work) left undelivered.
    async fn deliver_pending(&self, http: &Http, user: UserId, target: ChannelId) -> Result<(), DiscordError> {
        let pending = self.engine().pending_deliveries(CHANNEL, &user.to_string()).await?;
        self.deliver(http, user, target, &pending).await
    }

    /// A member's message in a support channel, their private place or a DM.
    async fn on_message(&self, ctx: &Context, msg: Message) {
        if msg.author.bot || !matches!(msg.kind, MessageType::Regular | MessageType::InlineReply) {
            return;
        }
        let user = msg.author.id;
        let place = match msg.guild_id {
            None => Place::Private,
            Some(g) if g.get() != self.config().guild_id => return,
            Some(_) if self.config().support_channels.contains(&msg.channel_id.get()) => {
                // The support team talks in support channels too; that is
                // not a customer asking.
                let roles = msg.member.as_ref().map(|m| m.roles.as_slice()).unwrap_or_default();
                if roles.iter().any(|r| self.config().agent_roles.contains(&r.get())) {
                    return;
                }
                Place::Public
            }
            Some(_) => match self.inner.places.owner(msg.channel_id).await {
                Ok(Some(owner)) if owner == user => Place::Private,
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(channel = %msg.channel_id, "looking up a private thread: {e}");
                    return;
                }
            },
        };
        let http = ctx.http.as_ref();
        let _turn = self.lock(user).await;
        let target = match place {
            Place::Private => msg.channel_id,
            Place::Public => match self.inner.places.get_or_open(http, user, msg.channel_id, self.now(), true).await {
                Ok(target) => target,
                Err(e) => {
                    tracing::error!(user = %user, "opening a private place failed: {e}");
                    let text = if e.code() == Some(CANNOT_DM) {
                        &self.config().texts.dm_refused
                    } else {
                        &self.config().texts.send_failed
                    };
                    self.notice(http, msg.channel_id, text).await;
                    return;
                }
            },
        };
        if let Err(e) = self.deliver_pending(http, user, target).await {
            tracing::warn!(user = %user, "earlier replies still undelivered: {e}");
        }
        let mut inbound = Self::customer(user, &msg.content);
        inbound.external_id = Some(format!("message:{}", msg.id));
        let reply = match self.engine().handle(inbound).await {
            Ok(reply) if reply.duplicate => return,
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(user = %user, "turn failed: {e}");
                self.notice(http, target, e.user_message(&self.inner.settings)).await;
                return;
            }
        };
        let delivered = self.deliver(http, user, target, &reply.messages).await;
        if let Err(e) = &delivered {
            tracing::error!(user = %user, "replies not delivered; they go out with the next turn: {e}");
        }
        match (place, delivered) {
            // Nothing was said (an agent holds the conversation): no pointer.
            (Place::Public, Ok(())) if reply.messages.is_empty() => {}
            (Place::Public, Ok(())) => {
                let member = render::escape(&display_name(&msg));
                let text = match self.config().private {
                    DiscordPrivate::Thread => {
                        self.config().texts.moved_to_thread.replace("{thread}", &format!("<#{target}>"))
                    }
                    DiscordPrivate::Dm => self.config().texts.moved_to_dm.clone(),
                };
                self.notice(http, msg.channel_id, &text.replace("{member}", &member)).await;
            }
            (Place::Public, Err(e)) => {
                let text = if e.code() == Some(CANNOT_DM) {
                    &self.config().texts.dm_refused
                } else {
                    &self.config().texts.send_failed
                };
                self.notice(http, msg.channel_id, text).await;
            }
            (Place::Private, Err(_)) => self.notice(http, target, &self.config().texts.send_failed).await,
            (Place::Private, Ok(())) => {}
        }
    }

    /// A click on a button or a choice in a select menu.
    async fn on_component(&self, ctx: &Context, c: ComponentInteraction) {
        let http = ctx.http.as_ref();
        let Some(custom) = Custom::parse(&c.data.custom_id) else {
            let _ = c.create_response(http, CreateInteractionResponse::Acknowledge).await;
            return;
        };
        let user = c.user.id;
        let own =
            c.guild_id.is_none() || matches!(self.inner.places.owner(c.channel_id).await, Ok(Some(u)) if u == user);
        if !own {
            let m = CreateInteractionResponseMessage::new()
                .content(&self.config().texts.not_yours)
                .ephemeral(true)
                .allowed_mentions(CreateAllowedMentions::new());
            let _ = c.create_response(http, CreateInteractionResponse::Message(m)).await;
            return;
        }
        let (step, index) = match (custom, &c.data.kind) {
            (Custom::Choose { step, index }, _) => (step, index),
            (Custom::Select { step }, ComponentInteractionDataKind::StringSelect { values }) => {
                match values.first().and_then(|v| v.parse().ok()) {
                    Some(index) => (step, index),
                    None => {
                        let _ = c.create_response(http, CreateInteractionResponse::Acknowledge).await;
                        return;
                    }
                }
            }
            (Custom::Page { step, page }, _) => return self.show_page(http, &c, step, page).await,
            _ => {
                let _ = c.create_response(http, CreateInteractionResponse::Acknowledge).await;
                return;
            }
        };
        let _turn = self.lock(user).await;
        let mut inbound = Self::customer(user, &(index + 1).to_string());
        inbound.reply_to_step = Some(step);
        inbound.external_id = Some(format!("interaction:{}", c.id));

        // Answer inside Discord's 3-second window: with the turn's result
        // when it is quick, else acknowledge first and edit afterwards.
        let turn = self.engine().handle(inbound);
        tokio::pin!(turn);
        let (reply, deferred) = match tokio::time::timeout(self.config().ack_after, &mut turn).await {
            Ok(reply) => (reply, false),
            Err(_) => {
                if let Err(e) = c.create_response(http, CreateInteractionResponse::Acknowledge).await {
                    tracing::warn!("deferring an interaction failed: {e}");
                }
                (turn.await, true)
            }
        };
        let reply = match reply {
            Ok(reply) if reply.duplicate => {
                if !deferred {
                    let _ = c.create_response(http, CreateInteractionResponse::Acknowledge).await;
                }
                return;
            }
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(user = %user, "turn failed: {e}");
                if !deferred {
                    let _ = c.create_response(http, CreateInteractionResponse::Acknowledge).await;
                }
                self.notice(http, c.channel_id, e.user_message(&self.inner.settings)).await;
                return;
            }
        };
        // The question's message keeps the answer and loses its buttons (a
        // stale click only removes them: nothing was chosen).
        let content = if reply.stale { c.message.content.clone() } else { answered(&c) };
        let acknowledged = if deferred {
            let edit = EditInteractionResponse::new()
                .content(content)
                .components(Vec::new())
                .allowed_mentions(CreateAllowedMentions::new());
            c.edit_response(http, edit).await.map(|_| ())
        } else {
            let update = CreateInteractionResponseMessage::new()
                .content(content)
                .components(Vec::new())
                .allowed_mentions(CreateAllowedMentions::new());
            c.create_response(http, CreateInteractionResponse::UpdateMessage(update)).await
        };
        if let Err(e) = acknowledged {
            tracing::warn!("updating the answered question failed: {e}");
        }
        if let Err(e) = self.deliver(http, user, c.channel_id, &reply.messages).await {
            tracing::error!(user = %user, "replies not delivered; they go out with the next turn: {e}");
            self.notice(http, c.channel_id, &self.config().texts.send_failed).await;
        }
    }

    /// Shows another page of a long select menu (no turn: the question is
    /// the same).
    async fn show_page(&self, http: &Http, c: &ComponentInteraction, step: u32, page: usize) {
        let open = self.engine().open_conversation(CHANNEL, &c.user.id.to_string()).await;
        let prompt = open
            .ok()
            .flatten()
            .and_then(|row| row.prompt)
            .and_then(|p| serde_json::from_str::<crate::engine::Prompt>(&p).ok());
        let response = match prompt {
            Some(p) if p.step == step => CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new()
                    .components(render::components(step, &p.options(), page))
                    .allowed_mentions(CreateAllowedMentions::new()),
            ),
            _ => CreateInteractionResponse::Acknowledge,
        };
        if let Err(e) = c.create_response(http, response).await {
            tracing::warn!("showing a page failed: {e}");
        }
    }

    /// Sends what is still undelivered after `redeliver_after` (younger
    /// ones may be on their way): replies an API error held back, notices of
    /// background work such as expiry. A day later it stops trying (a member
    /// who closed their DMs for good). Returns how many were sent.
    async fn redeliver(&self, http: &Http) -> anyhow::Result<usize> {
        let now = self.now();
        let before = now - self.config().redeliver_after.as_millis() as i64;
        let rows = self.engine().store().undelivered_on(CHANNEL, now - GIVE_UP_MS, before, 200).await?;
        // Member → their conversations with something owed.
        let mut owed: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for r in &rows {
            let conversations = owed.entry(r.conv_key.clone()).or_default();
            if !conversations.contains(&r.conversation_id) {
                conversations.push(r.conversation_id);
            }
        }
        let mut sent = 0;
        for (key, conversations) in owed {
            let Ok(user) = key.parse::<u64>().map(UserId::new) else { continue };
            match self.redeliver_to(http, user, &conversations, before).await {
                Ok(n) => sent += n,
                Err(e) => tracing::warn!(user = %user, "redelivery failed; will try again: {e}"),
            }
        }
        Ok(sent)
    }

    async fn redeliver_to(
        &self,
        http: &Http,
        user: UserId,
        conversations: &[i64],
        before: i64,
    ) -> Result<usize, DiscordError> {
        let _turn = self.lock(user).await;
        // Read again under the member's lock: a turn may have sent them.
        let mut pending = Vec::new();
        for id in conversations {
            for m in self.engine().store().undelivered(*id).await? {
                if m.created_at < before {
                    let message: Outbound = serde_json::from_str(&m.body)
                        .map_err(|e| DiscordError::Corrupt(format!("message {id}/{}: {e}", m.seq)))?;
                    pending.push(Delivery { conversation_id: m.conversation_id, seq: m.seq, message });
                }
            }
        }
        if pending.is_empty() {
            return Ok(0);
        }
        let target = self.inner.places.get_or_open(http, user, self.default_support(), self.now(), false).await?;
        self.deliver(http, user, target, &pending).await?;
        Ok(pending.len())
    }
}

/// The question's text with the member's answer under it.
fn answered(c: &ComponentInteraction) -> String {
    let mut label = None;
    for row in &c.message.components {
        for component in &row.components {
            match component {
                ActionRowComponent::Button(b) => {
                    if matches!(&b.data, ButtonKind::NonLink { custom_id, .. } if *custom_id == c.data.custom_id) {
                        label = b.label.clone();
                    }
                }
                ActionRowComponent::SelectMenu(menu) => {
                    if let ComponentInteractionDataKind::StringSelect { values } = &c.data.kind {
                        label = menu.options.iter().find(|o| values.contains(&o.value)).map(|o| o.label.clone());
                    }
                }
                _ => {}
            }
        }
    }
    let content = c.message.content.clone();
    match label {
        Some(l) if content.chars().count() + l.chars().count() < render::MAX_CONTENT - 10 => {
            format!("{content}\n→ {}", render::escape(&l))
        }
        _ => content,
    }
}

/// The name a member shows in the server (nickname, else global name, else
/// user name).
fn display_name(msg: &Message) -> String {
    msg.member.as_ref().and_then(|m| m.nick.clone()).unwrap_or_else(|| msg.author.display_name().to_string())
}

struct Handler(Discord);

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(bot = %ready.user.name, "connected to Discord");
        let guild = GuildId::new(self.0.config().guild_id);
        let commands = commands::definitions(&self.0.inner.settings);
        if let Err(e) = rest(self.0.config().send_attempts, || guild.set_commands(&ctx.http, commands.clone())).await {
            tracing::error!("registering the /frontdesk commands failed: {e}");
        }
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        tracing::info!("Discord gateway session resumed");
    }

    async fn message(&self, ctx: Context, msg: Message) {
        self.0.on_message(&ctx, msg).await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Component(c) => self.0.on_component(&ctx, c).await,
            Interaction::Command(c) => commands::handle(&self.0, &ctx, c).await,
            _ => {}
        }
    }
}

/// Connects to Discord and serves until `stop` changes.
pub async fn run(
    engine: Engine,
    settings: Arc<Settings>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let discord = Discord::new(engine, settings)?;
    let config = discord.config();
    let mut http = HttpBuilder::new(config.token.expose());
    if let Some(url) = &config.api_url {
        // serenity honours a proxy only with its own rate limiter off; the
        // proxy (or the test stand-in) is then in charge of rate limits.
        http = http.proxy(url).ratelimiter_disabled(true);
    }
    let intents = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let mut client: Client = serenity::all::ClientBuilder::new_with_http(http.build(), intents)
        .event_handler(Handler(discord.clone()))
        .await
        .context("building the Discord client")?;
    let shards = client.shard_manager.clone();
    let (http, sweeper) = (client.http.clone(), discord.clone());
    let every = config.redeliver_every;
    let redelivery = tokio::spawn(crate::background::every("discord redelivery", every, stop.clone(), move || {
        let (http, discord) = (http.clone(), sweeper.clone());
        async move { discord.redeliver(&http).await }
    }));
    tokio::spawn(async move {
        let _ = stop.changed().await;
        shards.shutdown_all().await;
    });
    let result = client.start().await.context("Discord gateway");
    redelivery.abort();
    result
}
