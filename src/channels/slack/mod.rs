//! The Slack channel, on slack-morphism.
//!
//! Members write in a support channel, mention the app, or message it
//! directly; their conversation (keyed by their user id) continues in a
//! private place ([`places`]): the direct-message channel with the app, or
//! (`slack.private = "ephemeral"`) messages in the support channel that only
//! they see. A public channel only ever gets a fixed notice in the thread of
//! the member's message. Choices are Block Kit buttons or a paged select menu
//! ([`render`]); agents use `/frontdesk` ([`commands`]).
//!
//! Events arrive by Socket Mode ([`socket`], an outbound WebSocket: the
//! default, for deployments behind a firewall) or over the Events API
//! ([`events`], requests to `serve`'s HTTP server, each signature checked).
//! Either way they are acknowledged at once and handled after; a message
//! Slack delivers again (a retry, or both the `message` and the
//! `app_mention` event of one message) is one inbound message to the store
//! (its channel and `ts`), answered once, also across instances.
//!
//! Delivery: send, then acknowledge, with a sweep ([`places`]).

mod api;
mod clicks;
mod commands;
mod events;
pub mod incoming;
mod places;
pub mod render;
mod socket;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::Context as _;

use crate::{
    config::{Settings, SlackMode, SlackPrivate, SlackSettings},
    engine::{Engine, EngineError, Inbound, Outbound},
    store::{Status, StoreError},
};
use incoming::Message;
use places::Place;

pub const CHANNEL: &str = "slack";

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("Slack API: {0}")]
    Api(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Desk(#[from] crate::agent::DeskError),
}

/// The adapter: cheap to clone, shared by every event task.
#[derive(Clone)]
pub struct Slack {
    inner: Arc<Shared>,
}

struct Shared {
    engine: Engine,
    settings: Arc<Settings>,
    api: api::Api,
    /// A user group's members, and when they were asked for.
    agents: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    locks: crate::channels::members::MemberLocks<String>,
}

impl Slack {
    pub fn new(engine: Engine, settings: Arc<Settings>) -> anyhow::Result<Slack> {
        let config = settings.slack.as_ref().context("Slack is not configured ([slack] support_channels)")?;
        // Several TLS crypto providers are linked in (ring, and what other
        // crates pull); rustls then picks none by itself for the connections
        // slack-morphism opens (HTTPS, and Socket Mode's wss://).
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let api = api::Api::new(config)?;
        Ok(Slack {
            inner: Arc::new(Shared { engine, settings, api, agents: Mutex::default(), locks: Default::default() }),
        })
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    fn api(&self) -> &api::Api {
        &self.inner.api
    }

    fn config(&self) -> &SlackSettings {
        self.inner.settings.slack.as_ref().expect("Slack::new checked [slack]")
    }

    fn now(&self) -> i64 {
        self.inner.engine.clock().now_ms()
    }

    async fn lock(&self, user: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.inner.locks.lock(user.to_string()).await
    }

    /// A member as the agent desk names them.
    fn member(user: &str) -> crate::agent::CustomerRef {
        crate::agent::CustomerRef::verified_member(CHANNEL, user, "slack")
    }

    fn customer(user: &str, text: &str) -> Inbound {
        let mut inbound = Inbound::new(CHANNEL, user, user, text);
        inbound.verified = Some("slack".into());
        inbound
    }

    /// Whether `user` is in one of the agent user groups (asked of Slack
    /// at most every `slack.agent_cache`).
    async fn is_agent(&self, user: &str) -> Result<bool, SlackError> {
        for group in &self.config().agent_groups {
            let cached = {
                let agents = self.inner.agents.lock().expect("agent cache");
                agents.get(group).filter(|(at, _)| at.elapsed() < self.config().agent_cache).map(|(_, m)| m.clone())
            };
            let members = match cached {
                Some(members) => members,
                None => {
                    let members = self.api().group_members(group).await?;
                    let mut agents = self.inner.agents.lock().expect("agent cache");
                    agents.insert(group.clone(), (Instant::now(), members.clone()));
                    members
                }
            };
            if members.iter().any(|m| m == user) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A member's message in a support channel, or to the app directly.
    pub async fn on_message(&self, m: Message) {
        let public = self.config().support_channels.contains(&m.channel);
        let direct = m.channel_type.as_deref() == Some("im") || m.channel.starts_with('D');
        if !public && !direct {
            return;
        }
        if public {
            // The support team talks in support channels too; that is not a
            // customer asking.
            match self.is_agent(&m.user).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!("could not tell whether {} is an agent: {e}", m.user),
            }
        }
        let _turn = self.lock(&m.user).await;
        let place = match self.place_for_message(&m, public).await {
            Ok(place) => place,
            Err(e) => {
                tracing::error!(user = %m.user, "finding the member's private place failed: {e}");
                return;
            }
        };
        if let Err(e) = self.deliver_pending(&m.user, &place).await {
            tracing::warn!(user = %m.user, "earlier replies still undelivered: {e}");
        }
        let mut inbound = Self::customer(&m.user, &m.text);
        inbound.external_id = Some(format!("message:{}:{}", m.channel, m.ts));
        let reply = match self.engine().handle(inbound).await {
            Ok(reply) if reply.duplicate => return,
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(user = %m.user, "turn failed: {e}");
                let sorry = render::notice(e.user_message(&self.inner.settings));
                let _ = self.send(&m.user, &place, &sorry).await;
                return;
            }
        };
        let handing_off = reply.messages.iter().any(|d| matches!(d.message, Outbound::Handoff { .. }));
        if reply.status == Some(Status::HandedOff) && !handing_off {
            self.relay_to_staff(&m.user, &m.text).await;
        }
        let delivered = self.deliver(&m.user, &place, &reply.messages).await;
        if let Err(e) = &delivered {
            tracing::error!(user = %m.user, "replies not delivered; they go out with the next turn: {e}");
        }
        if public && !place.ephemeral && !reply.messages.is_empty() {
            // A pointer in the thread of the message, nothing personal.
            let text = match delivered {
                Ok(_) => &self.config().texts.moved_to_dm,
                Err(_) => &self.config().texts.send_failed,
            };
            if let Err(e) = self.api().post(&m.channel, Some(&m.ts), &render::notice(text)).await {
                tracing::warn!(channel = %m.channel, "could not post the public notice: {e}");
            }
        }
    }

    /// The member's conversation is with the support team: what they wrote
    /// goes to the agents' channel (agents cannot read a member's DMs).
    async fn relay_to_staff(&self, user: &str, text: &str) {
        let Some(staff) = &self.config().agent_channel else { return };
        let text = format!("<@{user}> wrote (with the support team): {}", render::escape(text));
        for piece in render::split(&text) {
            let notice = api::Content { text: piece, blocks: Vec::new() };
            if let Err(e) = self.api().post(staff, None, &notice).await {
                tracing::warn!("could not relay to the agents' channel: {e}");
            }
        }
    }

    /// Where the conversation of a member who just wrote continues.
    async fn place_for_message(&self, m: &Message, public: bool) -> Result<Place, SlackError> {
        if public && self.config().private == SlackPrivate::Ephemeral {
            return self.set_place(&m.user, Place { channel: m.channel.clone(), ephemeral: true }).await;
        }
        if !public {
            return self.set_place(&m.user, Place { channel: m.channel.clone(), ephemeral: false }).await;
        }
        self.dm(&m.user).await
    }
}

/// The Slack channel as `serve` runs it, when `[slack]` is configured: send,
/// then acknowledge, with a sweep that redelivers what is owed.
pub fn served(app: &crate::app::App) -> anyhow::Result<Option<Box<dyn crate::channels::Channel>>> {
    if app.settings.slack.is_none() {
        return Ok(None);
    }
    let slack = Slack::new(app.engine.clone(), app.settings.clone())?;
    Ok(Some(Box::new(Served { slack })))
}

struct Served {
    slack: Slack,
}

impl crate::channels::Channel for Served {
    fn name(&self) -> &'static str {
        CHANNEL
    }

    fn delivery(&self) -> crate::channels::DeliveryModel {
        crate::channels::DeliveryModel::SendThenAckWithSweep
    }

    fn routes(&self) -> Option<axum::Router> {
        (self.slack.config().mode == SlackMode::Events).then(|| events::routes(self.slack.clone()))
    }

    fn run(
        self: Box<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(run(self.slack, stop))
    }
}

/// Serves Slack until `stop` changes. Of several instances sharing one
/// PostgreSQL store, one leads: it holds the Socket Mode connection (Slack
/// hands each event to one connection) and runs the redelivery sweep; the
/// others stand by and take over when it goes. (With the Events API every
/// instance answers requests; only the sweep is led.)
pub async fn run(slack: Slack, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    match slack.api().bot_user().await {
        Ok(bot) => tracing::info!(bot = ?bot, mode = ?slack.config().mode, "connected to Slack"),
        Err(e) => tracing::warn!("Slack auth.test failed (a wrong token?); going on: {e}"),
    }
    let store = slack.engine().store().clone();
    crate::background::leading(&store, "slack", crate::background::LEAD_CHECK, stop, |stop| {
        let slack = slack.clone();
        async move {
            let every = slack.config().redeliver_every;
            let sweeper = slack.clone();
            let sweep = tokio::spawn(crate::background::every("slack redelivery", every, stop.clone(), move || {
                let slack = sweeper.clone();
                async move { slack.redeliver().await }
            }));
            let result = match slack.config().mode {
                SlackMode::Socket => socket::run(slack.clone(), stop.clone()).await,
                SlackMode::Events => {
                    let mut stop = stop.clone();
                    let _ = stop.wait_for(|s| *s).await;
                    Ok(())
                }
            };
            if *stop.borrow() {
                // Let a redelivery round in progress finish marking what it sent.
                let _ = sweep.await;
            } else {
                sweep.abort();
            }
            result
        }
    })
    .await
}
