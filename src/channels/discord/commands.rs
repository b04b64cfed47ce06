//! The `/frontdesk` slash commands for agents: look a company up, start a
//! flow for a member or an e-mail address, read a conversation, take it over,
//! write in it, hand it back.
//!
//! Registered with no default permission (only server administrators see them
//! until the server grants the agent roles), and the invoker's roles are
//! checked again on every use. Every use, refused ones included, is audited.

use serenity::all::{
    ChannelId, CommandDataOption, CommandDataOptionValue, CommandInteraction, CommandOptionType, Context,
    CreateAllowedMentions, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseMessage, EditInteractionResponse, Http, Permissions, UserId,
};

use super::{render, Discord, DiscordError};
use crate::{
    agent::{CustomerRef, DeskError, LookupBy},
    config::Settings,
    engine::EngineError,
};

pub const COMMAND: &str = "frontdesk";

/// The flows an agent may start, from the flows folder (Discord allows 25
/// choices).
fn flow_names(settings: &Settings) -> Vec<String> {
    let source = crate::engine::flows::FlowsSource::of(&settings.engine.flows_dir);
    let mut names: Vec<String> =
        source.names().unwrap_or_default().into_iter().filter(|n| *n != settings.engine.router_flow).collect();
    names.truncate(25);
    names
}

fn member_option(required: bool) -> CreateCommandOption {
    CreateCommandOption::new(CommandOptionType::User, "member", "The member").required(required)
}

pub fn definitions(settings: &Settings) -> Vec<CreateCommand> {
    let mut by = CreateCommandOption::new(CommandOptionType::String, "by", "What the value is").required(true);
    for (name, _) in LookupBy::ALL {
        by = by.add_string_choice(name.replace('_', " "), name);
    }
    let mut flow = CreateCommandOption::new(CommandOptionType::String, "flow", "The flow to start").required(true);
    for name in flow_names(settings) {
        flow = flow.add_string_choice(name.replace('_', " "), name);
    }
    let sub =
        |name: &str, description: &str| CreateCommandOption::new(CommandOptionType::SubCommand, name, description);
    let text = |name: &str, description: &str| CreateCommandOption::new(CommandOptionType::String, name, description);
    vec![CreateCommand::new(COMMAND)
        .description("Account assistant tools for the support team")
        .default_member_permissions(Permissions::empty())
        .add_option(
            sub("lookup", "Look a company up in the directory")
                .add_sub_option(by)
                .add_sub_option(
                    text("value", "User name, e-mail, contract, serial, machine code or Org ID").required(true),
                )
                .add_sub_option(text("last_name", "The administrator's last name (contract lookups)")),
        )
        .add_option(
            sub("start", "Start a flow for a member (in their private conversation) or an e-mail address")
                .add_sub_option(flow)
                .add_sub_option(member_option(false))
                .add_sub_option(text("email", "The customer's e-mail address")),
        )
        .add_option(
            sub("transcript", "Show a customer's latest conversation and its state")
                .add_sub_option(member_option(false))
                .add_sub_option(text("email", "The customer's e-mail address")),
        )
        .add_option(
            sub("takeover", "Take a member's conversation over from the assistant").add_sub_option(member_option(true)),
        )
        .add_option(
            sub("say", "Write to a member in their private conversation (takes it over)")
                .add_sub_option(member_option(true))
                .add_sub_option(text("text", "What to tell them").required(true)),
        )
        .add_option(
            sub("handback", "Give a member's conversation back to the assistant").add_sub_option(member_option(true)),
        )]
}

fn option<'a>(options: &'a [CommandDataOption], name: &str) -> Option<&'a CommandDataOptionValue> {
    options.iter().find(|o| o.name == name).map(|o| &o.value)
}

fn string<'a>(options: &'a [CommandDataOption], name: &str) -> Option<&'a str> {
    match option(options, name) {
        Some(CommandDataOptionValue::String(s)) => Some(s.as_str()).filter(|s| !s.trim().is_empty()),
        _ => None,
    }
}

fn member(options: &[CommandDataOption]) -> Option<UserId> {
    match option(options, "member") {
        Some(CommandDataOptionValue::User(u)) => Some(*u),
        _ => None,
    }
}

impl Discord {
    fn is_agent(&self, cmd: &CommandInteraction) -> bool {
        cmd.guild_id.is_some_and(|g| g.get() == self.config().guild_id)
            && cmd.member.as_ref().is_some_and(|m| m.roles.iter().any(|r| self.config().agent_roles.contains(&r.get())))
    }

    /// Where a member's conversation goes: the support channel the agent
    /// is in, else the first one.
    fn support_for(&self, channel: ChannelId) -> ChannelId {
        if self.config().support_channels.contains(&channel.get()) {
            channel
        } else {
            self.default_support()
        }
    }

    /// An agent's action on a member's conversation, delivered to the
    /// member's private place.
    async fn for_member(
        &self,
        http: &Http,
        cmd: &CommandInteraction,
        user: UserId,
        act: impl std::future::Future<Output = Result<crate::engine::TurnReply, DeskError>>,
    ) -> Result<Option<ChannelId>, DiscordError> {
        let _turn = self.lock(user).await;
        let reply = act.await?;
        if reply.conversation_id.is_none() {
            return Ok(None);
        }
        let target =
            self.inner.places.get_or_open(http, user, self.support_for(cmd.channel_id), self.now(), false).await?;
        self.deliver(http, user, target, &reply.messages).await?;
        Ok(Some(target))
    }

    /// Runs the command; the text is for the agent alone.
    async fn command(&self, http: &Http, cmd: &CommandInteraction, agent: &str) -> Result<String, DiscordError> {
        let Some(sub) = cmd.data.options.first() else { return Ok("Use one of the /frontdesk subcommands.".into()) };
        let CommandDataOptionValue::SubCommand(options) = &sub.value else {
            return Ok("Use one of the /frontdesk subcommands.".into());
        };
        let desk = self.desk();
        match sub.name.as_str() {
            "lookup" => {
                let (Some(by), Some(value)) =
                    (string(options, "by").and_then(LookupBy::parse), string(options, "value"))
                else {
                    return Ok("Say what to look up: by and value.".into());
                };
                let last_name = string(options, "last_name");
                Ok(render::escape(&self.desk().lookup(agent, by, value, last_name).await?.to_string()))
            }
            "start" => {
                let flow = string(options, "flow").unwrap_or_default();
                match (member(options), string(options, "email")) {
                    (Some(user), None) => {
                        let who = Discord::member(user);
                        let act = async { Ok(desk.start(agent, &who, flow).await?.reply) };
                        let target = self.for_member(http, cmd, user, act).await?;
                        Ok(format!("Started {} for <@{user}>{}.", render::escape(flow), place(target)))
                    }
                    (None, Some(address)) => {
                        let Ok(who) = CustomerRef::email(address) else {
                            return Ok("That is not an e-mail address.".into());
                        };
                        self.desk().start(agent, &who, flow).await?;
                        Ok(format!(
                            "Started {} for {} by e-mail; the first mail is on its way.",
                            render::escape(flow),
                            render::escape(address)
                        ))
                    }
                    _ => Ok("Name either a member or an e-mail address.".into()),
                }
            }
            "transcript" => {
                let (who, customer) = match (member(options), string(options, "email")) {
                    (Some(user), None) => (format!("<@{user}>"), Discord::member(user)),
                    (None, Some(address)) => match CustomerRef::email(address) {
                        Ok(c) => (render::escape(address), c),
                        Err(_) => return Ok("That is not an e-mail address.".into()),
                    },
                    _ => return Ok("Name either a member or an e-mail address.".into()),
                };
                Ok(match self.desk().transcript(agent, &customer).await? {
                    Some(t) => render::split(&render::escape(&t.render(1500))).swap_remove(0),
                    None => format!("{who} has no conversation."),
                })
            }
            "takeover" | "say" | "handback" => {
                let Some(user) = member(options) else { return Ok("Name the member.".into()) };
                let who = Discord::member(user);
                let target = match sub.name.as_str() {
                    "takeover" => self.for_member(http, cmd, user, desk.take_over(agent, &who)).await?,
                    "say" => {
                        let text = string(options, "text").unwrap_or_default();
                        self.for_member(http, cmd, user, desk.say(agent, &who, text)).await?
                    }
                    _ => self.for_member(http, cmd, user, desk.hand_back(agent, &who)).await?,
                };
                Ok(match (sub.name.as_str(), target) {
                    ("takeover", t) => format!("You hold <@{user}>'s conversation now{}; the assistant stays quiet in it until you hand it back.", place(t)),
                    ("say", t) => format!("Sent to <@{user}>{}.", place(t)),
                    (_, Some(t)) => format!("Handed <@{user}>'s conversation back to the assistant{}.", place(Some(t))),
                    (_, None) => format!("No conversation of <@{user}> is with the support team."),
                })
            }
            other => Ok(format!("Unknown subcommand {}.", render::escape(other))),
        }
    }
}

fn place(target: Option<ChannelId>) -> String {
    target.map(|t| format!(" in <#{t}>")).unwrap_or_default()
}

/// The agent's name in the audit log: their user name and id.
fn agent_name(cmd: &CommandInteraction) -> String {
    format!("{} (discord:{})", cmd.user.name, cmd.user.id)
}

fn ephemeral(text: &str) -> CreateInteractionResponseMessage {
    CreateInteractionResponseMessage::new().content(text).ephemeral(true).allowed_mentions(CreateAllowedMentions::new())
}

/// Handles one `/frontdesk` invocation; the answer is ephemeral (only the
/// agent sees it), inside Discord's 3-second window or deferred.
pub async fn handle(discord: &Discord, ctx: &Context, cmd: CommandInteraction) {
    let http = ctx.http.as_ref();
    if cmd.data.name != COMMAND {
        return;
    }
    let agent = agent_name(&cmd);
    if !discord.is_agent(&cmd) {
        let sub = cmd.data.options.first().map(|o| o.name.clone()).unwrap_or_default();
        if let Err(e) = discord.desk().refused(&agent, &sub, "no agent role").await {
            tracing::error!(agent = %agent, "auditing a refused command failed: {e}");
        }
        let refusal = ephemeral(&discord.config().texts.not_agent);
        if let Err(e) = cmd.create_response(http, CreateInteractionResponse::Message(refusal)).await {
            tracing::warn!("refusing a command failed: {e}");
        }
        return;
    }
    let work = async {
        match discord.command(http, &cmd, &agent).await {
            Ok(text) => text,
            Err(DiscordError::Engine(e @ EngineError::Flow(_))) => render::escape(&e.to_string()),
            Err(e) => {
                tracing::error!(agent = %agent, "agent command failed: {e}");
                match e {
                    DiscordError::Engine(e) => e.user_message(&discord.inner.settings).to_string(),
                    // Agents may know what Discord said; what the member is
                    // owed goes out once they can be reached.
                    DiscordError::Rest(e) => render::escape(&format!(
                        "Discord refused a call ({e}). Anything already started goes out once the member can be reached."
                    )),
                    _ => discord.config().texts.send_failed.clone(),
                }
            }
        }
    };
    let defer = async {
        if let Err(e) = cmd.create_response(http, CreateInteractionResponse::Defer(ephemeral(""))).await {
            tracing::warn!("deferring a command failed: {e}");
        }
    };
    let answered = match super::in_time(discord.config().ack_after, work, defer).await {
        (text, false) => cmd.create_response(http, CreateInteractionResponse::Message(ephemeral(&text))).await,
        (text, true) => {
            let edit = EditInteractionResponse::new().content(text).allowed_mentions(CreateAllowedMentions::new());
            cmd.edit_response(http, edit).await.map(|_| ())
        }
    };
    if let Err(e) = answered {
        tracing::warn!(agent = %agent, "answering a command failed: {e}");
    }
}
