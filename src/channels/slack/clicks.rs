//! Clicks on the buttons and select menus of a member's questions.

use super::{
    api::Content,
    incoming::Click,
    places::Place,
    render::{self, Action},
    Slack, CHANNEL,
};
use crate::engine::Prompt;

impl Slack {
    /// The question the member's open conversation waits on, if any.
    async fn open_prompt(&self, user: &str) -> Option<Prompt> {
        let open = self.engine().open_conversation(CHANNEL, user).await.ok().flatten()?;
        serde_json::from_str(open.prompt.as_deref()?).ok()
    }

    /// Replaces the message a click was on: in a DM by `chat.update`, an
    /// ephemeral one through the interaction's `response_url`.
    async fn replace(&self, c: &Click, content: &Content) {
        let replaced = match (&c.channel, &c.message_ts, &c.response_url) {
            (Some(channel), Some(ts), _) if !c.ephemeral => self.api().update(channel, ts, content).await,
            (_, _, Some(url)) => self.api().respond(url, content).await,
            _ => return,
        };
        if let Err(e) = replaced {
            tracing::warn!("updating the clicked question failed: {e}");
        }
    }

    /// A click on a button, a choice in a select menu, or a page turn.
    pub async fn on_click(&self, c: Click) {
        let Some(action) = Action::parse(&c.action_id) else { return };
        let _turn = self.lock(&c.user).await;
        let prompt = self.open_prompt(&c.user).await;
        let (step, index) = match action {
            Action::Page { step, page } => {
                if let Some(p) = prompt.filter(|p| p.step == step) {
                    let mut shown = render::prompt(&p.text, &p.options(), step, page);
                    if let Some(last) = shown.pop() {
                        self.replace(&c, &last).await;
                    }
                }
                return;
            }
            Action::Choose { step, index } => (step, index),
            Action::Select { step } => match c.value.as_deref().and_then(|v| v.parse().ok()) {
                Some(index) => (step, index),
                None => return,
            },
        };
        let place = match (&c.channel, c.ephemeral) {
            (Some(channel), ephemeral) => Place { channel: channel.clone(), ephemeral },
            (None, _) => match self.current_place(&c.user).await {
                Ok(place) => place,
                Err(e) => {
                    tracing::error!(user = %c.user, "finding the member's place failed: {e}");
                    return;
                }
            },
        };
        let mut inbound = Self::customer(&c.user, &(index + 1).to_string());
        inbound.reply_to_step = Some(step);
        let click = c.action_ts.clone().or_else(|| c.message_ts.clone()).unwrap_or_default();
        inbound.external_id = Some(format!("click:{}:{click}:{}", c.user, c.action_id));
        let reply = match self.engine().handle(inbound).await {
            Ok(reply) if reply.duplicate => return,
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(user = %c.user, "turn failed: {e}");
                let _ = self.send(&c.user, &place, &render::notice(e.user_message(&self.inner.settings))).await;
                return;
            }
        };
        // The question keeps the answer and loses its buttons (a stale
        // click only removes them: nothing was chosen).
        if let Some(p) = prompt.filter(|p| p.step == step) {
            let choice = if reply.stale { None } else { p.options().get(index).cloned() };
            self.replace(&c, &render::answered(&p.text, choice.as_deref())).await;
        }
        if let Err(e) = self.deliver(&c.user, &place, &reply.messages).await {
            tracing::error!(user = %c.user, "replies not delivered; they go out with the next turn: {e}");
        }
    }
}
