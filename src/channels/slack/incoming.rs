//! What arrives from Slack, whichever way it came (Socket Mode or the
//! Events API): a member's message, a click on a question's buttons, an
//! agent's `/frontdesk`. Converted from slack-morphism's payload types once,
//! here; everything else works with these.

use slack_morphism::prelude::*;

/// A member wrote (a message, or a mention of the app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub user: String,
    pub channel: String,
    /// `im` for a direct message with the app.
    pub channel_type: Option<String>,
    /// The message's own timestamp: what makes it "the same message" when
    /// Slack delivers it again (a retried event, or the `message` and the
    /// `app_mention` events of one message).
    pub ts: String,
    pub text: String,
}

/// A member clicked a button or picked an option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub user: String,
    pub channel: Option<String>,
    /// The message the click was on (to update it).
    pub message_ts: Option<String>,
    pub ephemeral: bool,
    pub action_id: String,
    /// A button's value, or the picked option's.
    pub value: Option<String>,
    pub action_ts: Option<String>,
    pub response_url: Option<String>,
}

/// An agent (or anyone) used `/frontdesk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub user: String,
    pub channel: String,
    pub command: String,
    pub text: String,
    pub response_url: String,
}

/// The message of an event callback, if it is one a member wrote: not a
/// bot's (ours included), not an edit, a deletion or a join notice.
pub fn message(event: &SlackPushEventCallback) -> Option<Message> {
    match &event.event {
        SlackEventCallbackBody::Message(m) => {
            if m.subtype.is_some() || m.sender.bot_id.is_some() || m.hidden == Some(true) {
                return None;
            }
            Some(Message {
                user: m.sender.user.as_ref()?.to_string(),
                channel: m.origin.channel.as_ref()?.to_string(),
                channel_type: m.origin.channel_type.as_ref().map(|t| t.to_string()),
                ts: m.origin.ts.to_string(),
                text: m.content.as_ref().and_then(|c| c.text.clone()).unwrap_or_default(),
            })
        }
        SlackEventCallbackBody::AppMention(m) => Some(Message {
            user: m.user.to_string(),
            channel: m.channel.to_string(),
            channel_type: None,
            ts: m.origin.ts.to_string(),
            text: m.content.text.clone().unwrap_or_default(),
        }),
        SlackEventCallbackBody::Unknown(v) => {
            tracing::debug!(kind = %v["type"], "a Slack event this channel does not handle");
            None
        }
        _ => None,
    }
}

/// The click of a `block_actions` interaction.
pub fn click(event: &SlackInteractionEvent) -> Option<Click> {
    let SlackInteractionEvent::BlockActions(b) = event else { return None };
    let action = b.actions.as_ref()?.first()?;
    let (message_ts, container_channel, ephemeral) = match &b.container {
        SlackInteractionActionContainer::Message(m) => {
            (Some(m.message_ts.to_string()), m.channel_id.as_ref().map(|c| c.to_string()), m.is_ephemeral == Some(true))
        }
        _ => (None, None, false),
    };
    Some(Click {
        user: b.user.as_ref()?.id.to_string(),
        channel: b.channel.as_ref().map(|c| c.id.to_string()).or(container_channel),
        message_ts,
        ephemeral,
        action_id: action.action_id.to_string(),
        value: action.value.clone().or_else(|| action.selected_option.as_ref().map(|o| o.value.clone())),
        action_ts: action.action_ts.as_ref().map(|t| t.to_string()),
        response_url: b.response_url.as_ref().map(|u| u.0.to_string()),
    })
}

pub fn command(event: &SlackCommandEvent) -> Command {
    Command {
        user: event.user_id.to_string(),
        channel: event.channel_id.to_string(),
        command: event.command.to_string(),
        text: event.text.clone().unwrap_or_default(),
        response_url: event.response_url.0.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_member_s_message_and_not_a_bot_s() {
        let event = |extra: serde_json::Value| {
            let mut e = json!({ "type": "message", "user": "U1", "channel": "C1", "channel_type": "channel",
                                "ts": "1700000000.000100", "text": "help" });
            e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let callback = json!({ "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1", "event_time": 1700000000,
                                   "event": e });
            serde_json::from_value::<slack_morphism::prelude::SlackPushEventCallback>(callback).unwrap()
        };
        let m = super::message(&event(json!({}))).expect("a member's message");
        assert_eq!((m.user.as_str(), m.channel.as_str(), m.ts.as_str()), ("U1", "C1", "1700000000.000100"));
        assert!(super::message(&event(json!({ "bot_id": "B1" }))).is_none());
        assert!(super::message(&event(json!({ "subtype": "message_changed" }))).is_none());
    }
}
