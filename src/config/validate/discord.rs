//! The `[discord]` section: the bot, where customers ask, who is an agent.

use super::*;

impl Validator<'_> {
    /// `None` when no guild is configured (Discord off).
    pub(in crate::config) fn discord(&mut self) -> Option<DiscordSettings> {
        let guild = self.string("discord.guild_id").trim().to_string();
        let support_channels = self.snowflakes("discord.support_channels");
        let agent_roles = self.snowflakes("discord.agent_roles");
        let private = match self.string("discord.private").trim() {
            "thread" => DiscordPrivate::Thread,
            "dm" => DiscordPrivate::Dm,
            other => {
                self.bad("discord.private", format!("{other:?} must be thread or dm"));
                DiscordPrivate::Thread
            }
        };
        let api_url = self.string("discord.api_url").trim().trim_end_matches('/').to_string();
        if !api_url.is_empty() && url::Url::parse(&api_url).is_err() {
            self.bad("discord.api_url", format!("{api_url:?} is not a URL"));
        }
        let token = self.secret("discord.token");
        // Zero is allowed: acknowledge every click first.
        let ack_text = self.string("discord.ack_after");
        let ack_after = humantime::parse_duration(ack_text.trim()).unwrap_or_else(|_| {
            self.bad("discord.ack_after", format!("{ack_text:?} is not a duration like \"2s\""));
            Duration::from_secs(2)
        });
        if ack_after > Duration::from_millis(2500) {
            self.bad("discord.ack_after", "must leave time inside Discord's 3-second window (at most 2.5s)");
        }
        let send_attempts = self.int("discord.send_attempts", 1, 10) as u32;
        let redeliver_every = self.duration("discord.redeliver_every");
        let redeliver_after = self.duration("discord.redeliver_after");
        let agent_channel = match self.snowflakes("discord.agent_channel").as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => {
                self.bad("discord.agent_channel", "one channel id, or empty");
                None
            }
        };
        let texts = DiscordTexts {
            moved_to_thread: self.nonempty("discord.moved_to_thread"),
            moved_to_dm: self.nonempty("discord.moved_to_dm"),
            dm_refused: self.nonempty("discord.dm_refused"),
            send_failed: self.nonempty("discord.send_failed"),
            not_agent: self.nonempty("discord.not_agent"),
            not_yours: self.nonempty("discord.not_yours"),
        };
        if guild.is_empty() {
            return None;
        }
        let Ok(guild_id) = guild.parse::<u64>() else {
            self.bad("discord.guild_id", format!("{guild:?} is not a Discord id (a number)"));
            return None;
        };
        if support_channels.is_empty() {
            self.bad("discord.support_channels", "list at least one channel id where customers ask");
        }
        if agent_roles.is_empty() {
            self.bad("discord.agent_roles", "list at least one role id whose members may use the agent commands");
        }
        let Some(token) = token else {
            self.bad(
                "discord.token",
                format!("must be set (only from the environment: {})", env_name("discord.token")),
            );
            return None;
        };
        Some(DiscordSettings {
            token,
            guild_id,
            support_channels,
            agent_roles,
            private,
            api_url: (!api_url.is_empty()).then_some(api_url),
            ack_after,
            send_attempts,
            redeliver_every,
            redeliver_after,
            agent_channel,
            texts,
        })
    }

    /// A list of Discord ids, as numbers or strings (snowflakes do not
    /// survive every TOML or JSON reader as numbers), or one comma-separated
    /// string from the environment.
    fn snowflakes(&mut self, key: &str) -> Vec<u64> {
        let items: Vec<String> = match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            Some(Value::String(s)) => s.split(',').map(str::to_string).filter(|s| !s.trim().is_empty()).collect(),
            Some(Value::Number(n)) => vec![n.to_string()],
            _ => {
                self.bad(key, "expected a list of Discord ids");
                return Vec::new();
            }
        };
        let mut ids = Vec::new();
        for item in items {
            match item.trim().parse::<u64>() {
                Ok(id) if id > 0 => ids.push(id),
                _ => self.bad(key, format!("{item:?} is not a Discord id (a number)")),
            }
        }
        ids
    }
}
