//! Getting messages to members: REST calls with retries, a turn's replies
//! marked delivered one by one, and the sweep that sends what is owed.

use std::{future::Future, time::Duration};

use serenity::all::{ChannelId, Http, UserId};

use super::{render, Discord, DiscordError, CHANNEL};
use crate::engine::{Delivery, Outbound};
use crate::{channels::members, config::DiscordPrivate};

/// Discord's JSON error code for a channel that no longer exists.
const UNKNOWN_CHANNEL: isize = 10003;

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
pub(super) async fn rest<T, F, Fut>(attempts: u32, mut call: F) -> Result<T, DiscordError>
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

impl Discord {
    /// Sends a turn's messages to the member's place, those this instance
    /// claims ([`members::send_claimed`]), marking each delivered as soon as
    /// it is sent. Returns how many were sent.
    pub(super) async fn deliver(
        &self,
        http: &Http,
        user: UserId,
        target: ChannelId,
        deliveries: &[Delivery],
    ) -> Result<usize, DiscordError> {
        members::send_claimed(self.engine(), deliveries, |d| self.deliver_one(http, user, target, d)).await
    }

    async fn deliver_one(&self, http: &Http, user: UserId, target: ChannelId, d: Delivery) -> Result<(), DiscordError> {
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
            let reason = render::escape(reason);
            let text = match self.config().private {
                DiscordPrivate::Thread => format!("<@{user}> needs a person ({reason}): <#{target}>"),
                // Agents cannot open a member's DMs.
                DiscordPrivate::Dm => format!(
                    "<@{user}> needs a person ({reason}). They write to the bot in DMs: `/frontdesk transcript` reads the conversation, `/frontdesk say` answers."
                ),
            };
            self.notice(http, ChannelId::new(staff), &text).await;
        }
        Ok(())
    }

    /// Sends what an earlier turn (or background work) left undelivered.
    pub(super) async fn deliver_pending(
        &self,
        http: &Http,
        user: UserId,
        target: ChannelId,
    ) -> Result<(), DiscordError> {
        let pending = self.engine().pending_deliveries(CHANNEL, &user.to_string()).await?;
        self.deliver(http, user, target, &pending).await.map(drop)
    }

    /// Sends what is still undelivered after `redeliver_after` (younger
    /// ones may be on their way): replies an API error held back, notices of
    /// background work such as expiry. A day later it stops trying (a member
    /// who closed their DMs for good). Returns how many were sent.
    pub(super) async fn redeliver(&self, http: &Http) -> anyhow::Result<usize> {
        let owed =
            crate::channels::members::owed(self.engine().store(), CHANNEL, self.now(), self.config().redeliver_after)
                .await?;
        let mut sent = 0;
        for (key, conversations) in owed {
            let Ok(user) = key.parse::<u64>().map(UserId::new) else { continue };
            match self.redeliver_to(http, user, &conversations).await {
                Ok(n) => sent += n,
                Err(e) => tracing::warn!(user = %user, "redelivery failed; will try again: {e}"),
            }
        }
        Ok(sent)
    }

    async fn redeliver_to(&self, http: &Http, user: UserId, conversations: &[i64]) -> Result<usize, DiscordError> {
        let _turn = self.lock(user).await;
        // Read again under the member's lock: a turn may have sent them
        // meanwhile, and none is sending any now.
        let pending = self.engine().undelivered_in(conversations).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let target = self.inner.places.get_or_open(http, user, self.default_support(), self.now(), false).await?;
        self.deliver(http, user, target, &pending).await
    }
}
