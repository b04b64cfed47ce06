//! Getting messages to members: their private place (a DM channel with the
//! app, or ephemeral messages in a support channel), a turn's replies marked
//! delivered one by one, and the sweep that sends what is owed.

use super::{api::Content, render, Slack, SlackError, CHANNEL};
use crate::{
    channels::members,
    engine::{Delivery, Outbound},
    store::SlackPlace,
};

/// Where a member's messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Place {
    pub channel: String,
    /// Ephemeral messages in `channel`, which only the member sees.
    pub ephemeral: bool,
}

impl Slack {
    /// Records where the member's conversation continues.
    pub(super) async fn set_place(&self, user: &str, place: Place) -> Result<Place, SlackError> {
        let kind = if place.ephemeral { "ephemeral" } else { "dm" };
        let stored = SlackPlace { channel_id: place.channel.clone(), kind: kind.into() };
        self.engine().store().set_slack_place(user, &stored, self.now()).await?;
        Ok(place)
    }

    /// The member's DM with the app: remembered, else opened (and then
    /// remembered, so a restart or another instance finds it).
    pub(super) async fn dm(&self, user: &str) -> Result<Place, SlackError> {
        if let Some(p) = self.engine().store().slack_place(user).await? {
            if p.kind == "dm" {
                return Ok(Place { channel: p.channel_id, ephemeral: false });
            }
        }
        let channel = self.api().open_dm(user).await?;
        self.set_place(user, Place { channel, ephemeral: false }).await
    }

    /// Where messages nobody is waiting for go (an agent's start, a
    /// redelivery): the member's place, else their DM.
    pub(super) async fn current_place(&self, user: &str) -> Result<Place, SlackError> {
        match self.engine().store().slack_place(user).await? {
            Some(p) => Ok(Place { channel: p.channel_id, ephemeral: p.kind == "ephemeral" }),
            None => self.dm(user).await,
        }
    }

    /// Sends one message to the member's place.
    pub(super) async fn send(&self, user: &str, place: &Place, content: &Content) -> Result<(), SlackError> {
        if place.ephemeral {
            self.api().post_ephemeral(&place.channel, user, content).await
        } else {
            self.api().post(&place.channel, None, content).await.map(|_| ())
        }
    }

    /// Sends a turn's messages, those this instance claims
    /// ([`members::send_claimed`]), marking each delivered as soon as it is
    /// sent. Returns how many were sent.
    pub(super) async fn deliver(
        &self,
        user: &str,
        place: &Place,
        deliveries: &[Delivery],
    ) -> Result<usize, SlackError> {
        members::send_claimed(self.engine(), deliveries, |d| self.deliver_one(user, place, d)).await
    }

    async fn deliver_one(&self, user: &str, place: &Place, d: Delivery) -> Result<(), SlackError> {
        for content in render::messages(&d.message) {
            self.send(user, place, &content).await?;
        }
        if let (Outbound::Handoff { reason }, Some(staff)) = (&d.message, &self.config().agent_channel) {
            let text = format!(
                "<@{user}> needs a person ({}). `/frontdesk transcript <@{user}>` reads the conversation, \
                 `/frontdesk takeover <@{user}>` takes it, `/frontdesk say <@{user}> …` answers.",
                render::escape(reason)
            );
            if let Err(e) = self.api().post(staff, None, &Content { text, blocks: Vec::new() }).await {
                tracing::warn!("could not tell the agents' channel of a hand-off: {e}");
            }
        }
        Ok(())
    }

    /// Sends what an earlier turn (or background work) left undelivered.
    pub(super) async fn deliver_pending(&self, user: &str, place: &Place) -> Result<(), SlackError> {
        let pending = self.engine().pending_deliveries(CHANNEL, user).await?;
        self.deliver(user, place, &pending).await.map(drop)
    }

    /// Sends what is still undelivered after `redeliver_after` (younger
    /// ones may be on their way): replies a Slack error held back, notices
    /// of background work such as expiry. A day later it stops trying.
    /// Returns how many were sent.
    pub(super) async fn redeliver(&self) -> anyhow::Result<usize> {
        let owed =
            crate::channels::members::owed(self.engine().store(), CHANNEL, self.now(), self.config().redeliver_after)
                .await?;
        let mut sent = 0;
        for (user, conversations) in owed {
            match self.redeliver_to(&user, &conversations).await {
                Ok(n) => sent += n,
                Err(e) => tracing::warn!(user = %user, "redelivery failed; will try again: {e}"),
            }
        }
        Ok(sent)
    }

    async fn redeliver_to(&self, user: &str, conversations: &[i64]) -> Result<usize, SlackError> {
        let _turn = self.lock(user).await;
        // Read again under the member's lock: a turn may have sent them
        // meanwhile, and none is sending any now.
        let pending = self.engine().undelivered_in(conversations).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let place = self.current_place(user).await?;
        self.deliver(user, &place, &pending).await
    }
}
