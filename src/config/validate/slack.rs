//! The `[slack]` section: the app, where customers ask, who is an agent.

use super::*;

impl Validator<'_> {
    /// `None` when no support channel is configured (Slack off).
    pub(in crate::config) fn slack(&mut self) -> Option<SlackSettings> {
        let mode = match self.string("slack.mode").trim() {
            "socket" => SlackMode::Socket,
            "events" => SlackMode::Events,
            other => {
                self.bad("slack.mode", format!("{other:?} must be socket or events"));
                SlackMode::Socket
            }
        };
        let support_channels = self.slack_ids("slack.support_channels", &['C', 'G']);
        let agent_groups = self.slack_ids("slack.agent_groups", &['S']);
        let agent_cache = self.duration("slack.agent_cache");
        let private = match self.string("slack.private").trim() {
            "dm" => SlackPrivate::Dm,
            "ephemeral" => SlackPrivate::Ephemeral,
            other => {
                self.bad("slack.private", format!("{other:?} must be dm or ephemeral"));
                SlackPrivate::Dm
            }
        };
        let agent_channel = match self.slack_ids("slack.agent_channel", &['C', 'G']).as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            _ => {
                self.bad("slack.agent_channel", "one channel id, or empty");
                None
            }
        };
        let api_url = self.string("slack.api_url").trim().trim_end_matches('/').to_string();
        if !api_url.is_empty() && url::Url::parse(&api_url).is_err() {
            self.bad("slack.api_url", format!("{api_url:?} is not a URL"));
        }
        let send_attempts = self.int("slack.send_attempts", 1, 10) as u32;
        let redeliver_every = self.duration("slack.redeliver_every");
        let redeliver_after = self.duration("slack.redeliver_after");
        let texts = SlackTexts {
            moved_to_dm: self.nonempty("slack.moved_to_dm"),
            send_failed: self.nonempty("slack.send_failed"),
            not_agent: self.nonempty("slack.not_agent"),
            not_yours: self.nonempty("slack.not_yours"),
        };
        let (bot_token, app_token, signing_secret) =
            (self.secret("slack.bot_token"), self.secret("slack.app_token"), self.secret("slack.signing_secret"));
        if support_channels.is_empty() {
            return None;
        }
        if agent_groups.is_empty() {
            self.bad("slack.agent_groups", "list at least one user group id whose members may use /frontdesk");
        }
        let needed = |v: &mut Self, key: &str, what: &str| {
            v.bad(key, format!("must be set for {what} (only from the environment: {})", env_name(key)));
        };
        match mode {
            SlackMode::Socket if app_token.is_none() => needed(self, "slack.app_token", "Socket Mode"),
            SlackMode::Events if signing_secret.is_none() => needed(self, "slack.signing_secret", "the Events API"),
            _ => {}
        }
        let Some(bot_token) = bot_token else {
            needed(self, "slack.bot_token", "the Web API");
            return None;
        };
        Some(SlackSettings {
            mode,
            bot_token,
            app_token,
            signing_secret,
            support_channels,
            agent_groups,
            agent_cache,
            private,
            agent_channel,
            api_url: (!api_url.is_empty()).then_some(api_url),
            send_attempts,
            redeliver_every,
            redeliver_after,
            texts,
        })
    }

    /// A list of Slack ids starting with one of `prefixes` (`C0123ABCD`), as
    /// a list or one comma-separated string from the environment.
    fn slack_ids(&mut self, key: &str, prefixes: &[char]) -> Vec<String> {
        let items: Vec<String> = match self.get(key) {
            Some(Value::Array(items)) => items.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect(),
            Some(Value::String(s)) => s.split(',').map(str::to_string).filter(|s| !s.trim().is_empty()).collect(),
            _ => {
                self.bad(key, "expected a list of Slack ids");
                return Vec::new();
            }
        };
        let mut ids = Vec::new();
        for item in items {
            let id = item.trim().to_string();
            let ok = id.len() >= 3
                && prefixes.iter().any(|p| id.starts_with(*p))
                && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if ok {
                ids.push(id);
            } else {
                self.bad(key, format!("{item:?} is not a Slack id starting with {prefixes:?}"));
            }
        }
        ids
    }
}
