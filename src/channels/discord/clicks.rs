//! Clicks on the buttons and select menus of a member's questions.

use serenity::all::{
    ActionRowComponent, ButtonKind, ComponentInteraction, ComponentInteractionDataKind, Context, CreateAllowedMentions,
    CreateInteractionResponse, CreateInteractionResponseMessage, EditInteractionResponse, Http,
};

use super::{in_time, render, render::Custom, Discord, CHANNEL};

impl Discord {
    /// A click on a button or a choice in a select menu.
    pub(super) async fn on_component(&self, ctx: &Context, c: ComponentInteraction) {
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
        let mut inbound = Self::customer(user, &(index + 1).to_string());
        inbound.reply_to_step = Some(step);
        inbound.external_id = Some(format!("interaction:{}", c.id));

        // Answer inside Discord's 3-second window: with the turn's result
        // when it is quick, else acknowledge first and edit afterwards. The
        // window includes waiting for the member's previous turn to finish
        // sending; the lock is then held until this turn's replies are sent.
        let turn = async {
            let held = self.lock(user).await;
            (self.engine().handle(inbound).await, held)
        };
        let defer = async {
            if let Err(e) = c.create_response(http, CreateInteractionResponse::Acknowledge).await {
                tracing::warn!("deferring an interaction failed: {e}");
            }
        };
        let ((reply, _turn), deferred) = in_time(self.config().ack_after, turn, defer).await;
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
