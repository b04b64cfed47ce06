//! `/frontdesk` for agents: `lookup`, `start`, `transcript`, `takeover`,
//! `say`, `handback`, through the agent desk, answered ephemerally. Only
//! members of an agent user group may use it (asked of Slack at every use,
//! remembered for `slack.agent_cache`); a refusal is audited.

use std::time::Duration;

use super::{incoming::Command, render, Slack, SlackError};
use crate::{
    agent::{CustomerRef, DeskError, LookupBy},
    engine::{EngineError, TurnReply},
};

/// How long a command may take before Slack's 3-second window closes: past
/// it, the answer says so and follows through the command's `response_url`.
const ANSWER_WITHIN: Duration = Duration::from_millis(2000);

const USAGE: &str = "Use `/frontdesk lookup KIND VALUE [LAST NAME]`, `start FLOW @member|ADDRESS`, \
                     `transcript @member|ADDRESS`, `takeover @member`, `say @member TEXT` or `handback @member`.";

/// A member as a command names them: `<@U123>`, `<@U123|name>` or `U123`.
fn member_id(word: &str) -> Option<String> {
    let id = word.strip_prefix("<@").and_then(|w| w.strip_suffix('>')).unwrap_or(word);
    let id = id.split('|').next().unwrap_or_default();
    let ok =
        id.len() >= 3 && id.starts_with(['U', 'W']) && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    ok.then(|| id.to_string())
}

/// A customer named by a command: a member, or an e-mail address.
fn customer(word: &str) -> Option<(String, CustomerRef)> {
    if let Some(id) = member_id(word) {
        return Some((format!("<@{id}>"), Slack::member(&id)));
    }
    let address = word.trim_start_matches("<mailto:").split('|').next().unwrap_or_default().trim_end_matches('>');
    CustomerRef::email(address).ok().map(|c| (render::escape(address), c))
}

impl Slack {
    /// The answer to one `/frontdesk`: within Slack's window, or a note that
    /// it follows (then through the `response_url`).
    pub async fn answer_command(&self, cmd: Command) -> String {
        let slack = self.clone();
        let command = cmd.clone();
        let mut work = tokio::spawn(async move { slack.command(&command).await });
        match tokio::time::timeout(ANSWER_WITHIN, &mut work).await {
            Ok(done) => done.unwrap_or_else(|e| format!("The command failed: {e}")),
            Err(_) => {
                let slack = self.clone();
                tokio::spawn(async move {
                    let text = work.await.unwrap_or_else(|e| format!("The command failed: {e}"));
                    if let Err(e) = slack.api().respond(&cmd.response_url, &render::notice_raw(&text)).await {
                        tracing::warn!("answering a slow command failed: {e}");
                    }
                });
                "Working on it; the answer follows here.".to_string()
            }
        }
    }

    /// Runs the command; the text is for the agent alone (Slack markup).
    async fn command(&self, cmd: &Command) -> String {
        let agent = format!("slack:{}", cmd.user);
        let sub = cmd.text.split_whitespace().next().unwrap_or_default().to_lowercase();
        match self.is_agent(&cmd.user).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = self.desk().refused(&agent, &sub, "not in an agent user group").await {
                    tracing::error!(agent = %agent, "auditing a refused command failed: {e}");
                }
                return render::escape(&self.config().texts.not_agent);
            }
            Err(e) => {
                tracing::error!("could not ask Slack for the agent groups: {e}");
                return render::escape(&self.config().texts.send_failed);
            }
        }
        match self.run_command(&agent, cmd).await {
            Ok(text) => text,
            Err(SlackError::Desk(e)) => render::escape(&e.agent_message(&self.inner.settings)),
            Err(SlackError::Engine(e @ EngineError::Flow(_))) => render::escape(&e.to_string()),
            Err(e) => {
                tracing::error!(agent = %agent, "agent command failed: {e}");
                "Slack or the store failed; anything already started goes out once the member can be reached."
                    .to_string()
            }
        }
    }

    fn desk(&self) -> crate::agent::Desk {
        crate::agent::Desk::new(self.engine().clone(), self.inner.settings.clone(), crate::agent::Surface::Slack)
    }

    /// An agent's action on a member's conversation, delivered to the
    /// member's DM (where a flow an agent starts continues).
    async fn for_member(
        &self,
        user: &str,
        act: impl std::future::Future<Output = Result<TurnReply, DeskError>>,
    ) -> Result<bool, SlackError> {
        let _turn = self.lock(user).await;
        let reply = act.await?;
        if reply.conversation_id.is_none() {
            return Ok(false);
        }
        let place = self.dm(user).await?;
        self.deliver(user, &place, &reply.messages).await?;
        Ok(true)
    }

    async fn run_command(&self, agent: &str, cmd: &Command) -> Result<String, SlackError> {
        let words: Vec<&str> = cmd.text.split_whitespace().collect();
        let desk = self.desk();
        let Some((sub, args)) = words.split_first() else { return Ok(USAGE.into()) };
        match (sub.to_lowercase().as_str(), args) {
            ("lookup", [kind, value, rest @ ..]) => {
                let Some(by) = LookupBy::parse(kind) else { return Ok(format!("Unknown lookup kind. {USAGE}")) };
                let last_name = (!rest.is_empty()).then(|| rest.join(" "));
                let found = desk.lookup(agent, by, value, last_name.as_deref()).await?;
                Ok(render::split(&render::escape(&found.to_string())).swap_remove(0))
            }
            ("start", [flow, who]) => match customer(who) {
                Some((shown, c @ CustomerRef::Email(_))) => {
                    desk.start(agent, &c, flow).await?;
                    Ok(format!("Started {} for {shown} by e-mail; the first mail is on its way.", render::escape(flow)))
                }
                Some((shown, c)) => {
                    let user = c.id().to_string();
                    let act = async { Ok(desk.start(agent, &c, flow).await?.reply) };
                    self.for_member(&user, act).await?;
                    Ok(format!("Started {} for {shown}; it continues in their direct messages.", render::escape(flow)))
                }
                None => Ok("Name a member (@name) or an e-mail address.".into()),
            },
            ("transcript", [who]) => {
                let Some((shown, c)) = customer(who) else { return Ok("Name a member or an e-mail address.".into()) };
                Ok(match desk.transcript(agent, &c).await? {
                    Some(t) => render::split(&render::escape(&t.render(2900))).swap_remove(0),
                    None => format!("{shown} has no conversation."),
                })
            }
            ("takeover" | "handback", [who]) | ("say", [who, ..]) => {
                let Some(user) = member_id(who) else { return Ok("Name the member (@name).".into()) };
                let c = Slack::member(&user);
                let text = args.get(1..).unwrap_or_default().join(" ");
                let found = match sub.to_lowercase().as_str() {
                    "takeover" => self.for_member(&user, desk.take_over(agent, &c)).await?,
                    "say" if text.is_empty() => return Ok("Say what to write.".into()),
                    "say" => self.for_member(&user, desk.say(agent, &c, &text)).await?,
                    _ => self.for_member(&user, desk.hand_back(agent, &c)).await?,
                };
                Ok(match (sub.to_lowercase().as_str(), found) {
                    ("takeover", _) => format!(
                        "You hold <@{user}>'s conversation now; the assistant stays quiet in it until you hand it back."
                    ),
                    ("say", _) => format!("Sent to <@{user}>."),
                    (_, true) => format!("Handed <@{user}>'s conversation back to the assistant."),
                    (_, false) => format!("No conversation of <@{user}> is with the support team."),
                })
            }
            _ => Ok(USAGE.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn members_are_named_as_slack_sends_them() {
        for word in ["<@U123ABC>", "<@U123ABC|ann>", "U123ABC"] {
            assert_eq!(super::member_id(word).as_deref(), Some("U123ABC"), "{word}");
        }
        for word in ["@ann", "<!channel>", "u123", "<@C123>"] {
            assert_eq!(super::member_id(word), None, "{word}");
        }
        assert!(matches!(super::customer("pat@example.com"), Some((_, crate::agent::CustomerRef::Email(_)))));
    }
}
