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

mod clicks;
mod commands;
mod delivery;
mod places;
pub mod render;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use serenity::all::{
    ChannelId, Client, Context, CreateAllowedMentions, CreateMessage, EventHandler, GatewayIntents, GuildId, Http,
    HttpBuilder, Interaction, Message, MessageType, Ready, ResumedEvent, UserId,
};

use crate::{
    config::{DiscordPrivate, DiscordSettings, Settings},
    engine::{Engine, EngineError, Inbound},
    store::StoreError,
};
use delivery::rest;

pub const CHANNEL: &str = "discord";

/// Discord's JSON error code for a member whose DMs are closed to the bot.
const CANNOT_DM: isize = 50007;

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("Discord API: {0}")]
    Rest(#[from] Box<serenity::Error>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Desk(#[from] crate::agent::DeskError),
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

/// Runs `work` inside Discord's 3-second window for interactions: returns
/// its result and `false` when it is done within `ack_after`; else runs
/// `defer` (the acknowledgement) first, then waits, and returns `true`.
/// A zero `ack_after` always acknowledges first.
async fn in_time<T>(
    ack_after: Duration,
    work: impl std::future::Future<Output = T>,
    defer: impl std::future::Future<Output = ()>,
) -> (T, bool) {
    tokio::pin!(work);
    if !ack_after.is_zero() {
        if let Ok(done) = tokio::time::timeout(ack_after, &mut work).await {
            return (done, false);
        }
    }
    defer.await;
    (work.await, true)
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
    places: places::Places,
    locks: crate::channels::members::MemberLocks<u64>,
}

impl Discord {
    pub fn new(engine: Engine, settings: Arc<Settings>) -> anyhow::Result<Discord> {
        let config = settings.discord.as_ref().context("Discord is not configured ([discord] guild_id)")?;
        let places = places::Places::new(engine.store().clone(), config.private, config.send_attempts);
        Ok(Discord { inner: Arc::new(Shared { engine, settings, places, locks: Default::default() }) })
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn config(&self) -> &DiscordSettings {
        self.inner.settings.discord.as_ref().expect("Discord::new checked [discord]")
    }

    fn now(&self) -> i64 {
        self.inner.engine.clock().now_ms()
    }

    async fn lock(&self, user: UserId) -> tokio::sync::OwnedMutexGuard<()> {
        self.inner.locks.lock(user.get()).await
    }

    /// A member as the agent desk names them.
    fn member(user: UserId) -> crate::agent::CustomerRef {
        crate::agent::CustomerRef::verified_member(CHANNEL, &user.to_string(), "discord")
    }

    /// The agent desk, as Discord's agents use it.
    fn desk(&self) -> crate::agent::Desk {
        crate::agent::Desk::new(self.engine().clone(), self.inner.settings.clone(), crate::agent::Surface::Discord)
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

    /// What the public channel is told when a member's private place could
    /// not be reached: their DMs are closed, or Discord failed.
    fn unreachable(&self, e: &DiscordError) -> &str {
        if e.code() == Some(CANNOT_DM) {
            &self.config().texts.dm_refused
        } else {
            &self.config().texts.send_failed
        }
    }

    /// Sends a fixed text (no personal data in it) to a channel, once.
    async fn notice(&self, http: &Http, channel: ChannelId, text: &str) {
        let m = CreateMessage::new().content(text).allowed_mentions(CreateAllowedMentions::new());
        if let Err(e) = channel.send_message(http, m).await {
            tracing::warn!(channel = %channel, "could not post a notice: {e}");
        }
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
                    self.notice(http, msg.channel_id, self.unreachable(&e)).await;
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
        // With the support team (not the turn that handed it over, which
        // the hand-off notice announces).
        let handing_off = reply.messages.iter().any(|d| matches!(d.message, crate::engine::Outbound::Handoff { .. }));
        if reply.status == Some(crate::store::Status::HandedOff) && !handing_off {
            self.relay_to_staff(http, user, &msg.content).await;
        }
        let delivered = self.deliver(http, user, target, &reply.messages).await;
        if let Err(e) = &delivered {
            tracing::error!(user = %user, "replies not delivered; they go out with the next turn: {e}");
        }
        match (place, delivered) {
            // Nothing was said (an agent holds the conversation): no pointer.
            (Place::Public, Ok(_)) if reply.messages.is_empty() => {}
            (Place::Public, Ok(_)) => {
                let member = render::escape(&display_name(&msg));
                let text = match self.config().private {
                    DiscordPrivate::Thread => {
                        self.config().texts.moved_to_thread.replace("{thread}", &format!("<#{target}>"))
                    }
                    DiscordPrivate::Dm => self.config().texts.moved_to_dm.clone(),
                };
                self.notice(http, msg.channel_id, &text.replace("{member}", &member)).await;
            }
            (Place::Public, Err(e)) => self.notice(http, msg.channel_id, self.unreachable(&e)).await,
            (Place::Private, Err(_)) => self.notice(http, target, &self.config().texts.send_failed).await,
            (Place::Private, Ok(_)) => {}
        }
    }
}

impl Discord {
    /// The member's conversation is with the support team (an agent holds
    /// it, or it waits for one): in DMs, which agents cannot read, what the
    /// member wrote goes to the staff channel. In a private thread the agents
    /// read it there.
    async fn relay_to_staff(&self, http: &Http, user: UserId, text: &str) {
        if let (DiscordPrivate::Dm, Some(staff)) = (self.config().private, self.config().agent_channel) {
            let text = format!("<@{user}> wrote (with the support team): {}", render::escape(text));
            for piece in render::split(&text) {
                self.notice(http, ChannelId::new(staff), &piece).await;
            }
        }
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

/// The Discord channel as `serve` runs it, when `[discord]` is configured:
/// send, then acknowledge, with a sweep that redelivers what is owed.
pub fn served(app: &crate::app::App) -> anyhow::Result<Option<Box<dyn crate::channels::Channel>>> {
    Ok(app.settings.discord.as_ref().map(|_| {
        Box::new(Served { engine: app.engine.clone(), settings: app.settings.clone() })
            as Box<dyn crate::channels::Channel>
    }))
}

struct Served {
    engine: Engine,
    settings: Arc<Settings>,
}

impl crate::channels::Channel for Served {
    fn name(&self) -> &'static str {
        CHANNEL
    }

    fn delivery(&self) -> crate::channels::DeliveryModel {
        crate::channels::DeliveryModel::SendThenAckWithSweep
    }

    fn run(
        self: Box<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(run(self.engine, self.settings, stop))
    }
}

/// Serves Discord until `stop` changes. Of several instances sharing one
/// PostgreSQL store, one runs the gateway (Discord hands each event to one
/// session) and the others stand by, taking over when it goes.
pub async fn run(
    engine: Engine,
    settings: Arc<Settings>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let discord = Discord::new(engine, settings)?;
    let store = discord.engine().store().clone();
    let lead = format!("discord gateway {}", discord.config().guild_id);
    crate::background::leading(&store, &lead, crate::background::LEAD_CHECK, stop, |stop| {
        gateway(discord.clone(), stop)
    })
    .await
}

/// Runs the gateway client until `stop` changes.
async fn gateway(discord: Discord, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
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
    let (stopping, mut stop) = (stop.clone(), stop);
    tokio::spawn(async move {
        let _ = stop.changed().await;
        shards.shutdown_all().await;
    });
    // The client ends on its own only when Discord refuses it (a bad token,
    // intents not enabled), or when stopped.
    let result = client.start().await.context("Discord gateway");
    if *stopping.borrow() {
        // Let a redelivery round in progress finish marking what it sent.
        let _ = redelivery.await;
    } else {
        redelivery.abort();
    }
    result
}
