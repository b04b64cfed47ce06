//! Gateway event payloads shaped like Discord's documented ones (with the
//! fields serenity requires; `fixtures_deserialize` proves each one parses,
//! since serenity drops a dispatch it cannot read without a word).
#![allow(dead_code)]

use serde_json::{json, Value};

use super::stand_in::{message_object, APP, GUILD};

pub const SUPPORT: u64 = 910_000_000_000_000_001;
pub const ELSEWHERE: u64 = 910_000_000_000_000_002;
pub const AGENT_ROLE: u64 = 920_000_000_000_000_001;
pub const OTHER_ROLE: u64 = 920_000_000_000_000_002;
pub const COMMAND_ID: u64 = 930_000_000_000_000_001;

const JOINED: &str = "2025-01-01T00:00:00.000000+00:00";

pub fn user(id: u64, username: &str, global_name: Option<&str>) -> Value {
    json!({ "id": id.to_string(), "username": username, "global_name": global_name, "discriminator": "0", "avatar": null })
}

/// MESSAGE_CREATE: in a guild channel (`guild` set, with the author's
/// partial member and nickname) or a DM.
pub fn message(id: u64, channel: u64, guild: bool, author: Value, content: &str, nick: Option<&str>) -> Value {
    let mut m = message_object(id, &channel.to_string(), author, content);
    if guild {
        m["guild_id"] = json!(GUILD.to_string());
        m["member"] =
            json!({ "roles": [], "joined_at": JOINED, "deaf": false, "mute": false, "flags": 0, "nick": nick });
    }
    m
}

fn member(user: &Value, roles: &[u64]) -> Value {
    json!({
        "user": user, "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(), "joined_at": JOINED,
        "deaf": false, "mute": false, "flags": 0, "nick": null,
    })
}

/// The fields every interaction carries; `member` in a guild, `user` in a
/// DM. Its token is `token-<id>`.
fn interaction(id: u64, kind: u8, channel: u64, guild: bool, who: &Value, roles: &[u64], data: Value) -> Value {
    let mut i = json!({
        "id": id.to_string(), "application_id": APP.to_string(), "type": kind, "data": data,
        "channel_id": channel.to_string(), "token": format!("token-{id}"), "version": 1, "locale": "en-US",
        "entitlements": [], "attachment_size_limit": 10485760,
    });
    if guild {
        i["guild_id"] = json!(GUILD.to_string());
        i["member"] = member(who, roles);
    } else {
        i["user"] = who.clone();
    }
    i
}

/// A click on a button (`values: None`) or a choice in a string select menu,
/// on `message` (as the bot posted it, components included).
pub fn component(
    id: u64,
    channel: u64,
    guild: bool,
    who: &Value,
    custom_id: &str,
    values: Option<Vec<String>>,
    message: Value,
) -> Value {
    let data = match values {
        None => json!({ "custom_id": custom_id, "component_type": 2 }),
        Some(v) => json!({ "custom_id": custom_id, "component_type": 3, "values": v }),
    };
    let mut i = interaction(id, 3, channel, guild, who, &[], data);
    i["message"] = message;
    i
}

/// `/frontdesk <sub> …` invoked by a member with `roles`; `options` are the
/// subcommand's own (`[{"name","type","value"}]`).
pub fn command(id: u64, channel: u64, who: &Value, roles: &[u64], sub: &str, options: Value) -> Value {
    let data = json!({
        "id": COMMAND_ID.to_string(), "name": "frontdesk", "type": 1,
        "options": [{ "name": sub, "type": 1, "options": options }],
    });
    interaction(id, 2, channel, true, who, roles, data)
}

/// A string option, a user option.
pub fn text(name: &str, value: &str) -> Value {
    json!({ "name": name, "type": 3, "value": value })
}

pub fn member_opt(id: u64) -> Value {
    json!({ "name": "member", "type": 6, "value": id.to_string() })
}
