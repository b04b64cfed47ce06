//! What agents look at, whatever channel they use: a directory lookup and a
//! customer's conversation, as plain text. Agents see full names and
//! addresses (customers only ever see masked ones).

pub mod cli;

use crate::{
    directory::{Directory, Found, Search},
    engine::Outbound,
    store::{ConversationRow, Result, Store},
};

/// How an agent looks a company up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupBy {
    Username,
    Email,
    /// A sales contract number and its administrator's last name.
    Contract,
    Serial,
    MachineCode,
    OrgId,
}

impl LookupBy {
    pub const ALL: [(&'static str, LookupBy); 6] = [
        ("username", LookupBy::Username),
        ("email", LookupBy::Email),
        ("contract", LookupBy::Contract),
        ("serial", LookupBy::Serial),
        ("machine_code", LookupBy::MachineCode),
        ("org_id", LookupBy::OrgId),
    ];

    pub fn parse(name: &str) -> Option<LookupBy> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, by)| *by)
    }
}

/// The company found, with its contacts, or why nothing was.
pub async fn lookup(directory: &Directory, by: LookupBy, value: &str, last_name: Option<&str>) -> Result<String> {
    let value = value.trim().to_string();
    let company = match by {
        LookupBy::OrgId => directory.company(&value).await?,
        _ => {
            let search = match by {
                LookupBy::Username => Search::Username { value },
                LookupBy::Email => Search::Email { value },
                LookupBy::Serial => Search::Serial { value },
                LookupBy::MachineCode => Search::MachineCode { value },
                LookupBy::Contract => match last_name.map(str::trim).filter(|n| !n.is_empty()) {
                    Some(name) => Search::Contract { number: value, admin_last_name: name.to_string() },
                    None => return Ok("A contract lookup needs the administrator's last name as well.".into()),
                },
                LookupBy::OrgId => unreachable!("handled above"),
            };
            match directory.search(&search).await? {
                Found::Company { company } => Some(company),
                Found::NotFound => None,
                Found::NotLegacy { product } => {
                    return Ok(format!(
                        "That is the serial number of a {product} license: machine codes are for XP licenses only."
                    ))
                }
            }
        }
    };
    let Some(c) = company else {
        return Ok("No company record matches.".into());
    };
    let mut out = format!(
        "{} (Org ID {}, {})\n{}, {} {}, {} {}\nPhone: {}\nContacts:",
        c.name, c.org_id, c.status, c.street, c.postal_code, c.city, c.region, c.country, c.phone
    );
    let contacts = directory.contacts(&c.org_id).await?;
    if contacts.is_empty() {
        out.push_str(" none");
    }
    for k in contacts {
        out.push_str(&format!(
            "\n- {} {} ({}, {}) user {} · {} · {}",
            k.first_name, k.last_name, k.role, k.status, k.username, k.email, k.phone
        ));
    }
    Ok(out)
}

/// A customer's latest conversation on `channel`. Conversations are keyed by
/// who the customer is, except on e-mail, where they are keyed by mail
/// thread and found by the sender's address.
pub async fn latest_conversation(store: &Store, channel: &str, customer: &str) -> Result<Option<ConversationRow>> {
    if channel == crate::channels::email::CHANNEL {
        store.latest_conversation_of(channel, &customer.trim().to_lowercase()).await
    } else {
        store.latest_conversation(channel, customer).await
    }
}

/// A customer's latest conversation: its state, then its messages, the
/// newest kept when it is longer than `max_chars`. `None`: they have none.
pub async fn transcript(store: &Store, row: Option<ConversationRow>, max_chars: usize) -> Result<Option<String>> {
    let Some(row) = row else { return Ok(None) };
    let mut head = format!(
        "Conversation {} · flow {} · {}",
        row.id,
        if row.flow.is_empty() { "-" } else { &row.flow },
        row.status
    );
    if let Some(reason) = &row.end_reason {
        head.push_str(&format!(" ({reason})"));
    }
    if let Some(agent) = &row.started_by {
        head.push_str(&format!(" · started by {agent}"));
    }
    let mut lines = Vec::new();
    for m in store.transcript(row.id).await? {
        if m.direction == "in" {
            let text = serde_json::from_str::<serde_json::Value>(&m.body)
                .ok()
                .and_then(|v| v["text"].as_str().map(str::to_string))
                .unwrap_or_default();
            lines.push(format!("customer: {text}"));
        } else if let Ok(message) = serde_json::from_str::<Outbound>(&m.body) {
            let shown = crate::channels::terminal::render(&message).join("\n  ");
            let pending = if m.delivered_at.is_none() { " (not delivered yet)" } else { "" };
            let who = match &message {
                Outbound::Text { by: Some(agent), .. } => format!("agent {agent}"),
                _ => "assistant".to_string(),
            };
            lines.push(format!("{who}{pending}: {shown}"));
        }
    }
    // Keep the newest lines that fit.
    let mut budget = max_chars.saturating_sub(head.chars().count() + 40);
    let mut kept = Vec::new();
    for line in lines.iter().rev() {
        let n = line.chars().count() + 1;
        if n > budget {
            break;
        }
        budget -= n;
        kept.push(line.as_str());
    }
    kept.reverse();
    let mut out = head;
    if kept.len() < lines.len() {
        out.push_str(&format!("\n… {} earlier message(s) not shown", lines.len() - kept.len()));
    }
    for line in kept {
        out.push('\n');
        out.push_str(line);
    }
    Ok(Some(out))
}
