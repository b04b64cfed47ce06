//! The account effects flows call: company searches, the contact list, and
//! login recovery. Each audits what it did; the ones that send mail or store
//! tokens do it through the turn's writes, so it happens exactly when the
//! step is recorded.
//!
//! What each effect returns to its flow (a map; `reason` is always a
//! [`Refusal`] name, and a refusal for a rate limit also has `wait_minutes`):
//!
//! | effect | success | otherwise |
//! |---|---|---|
//! | `find_company(kind, value)`, `find_company_by_contract(number, last_name)` | `{found: true, org_id, name, country}` | `{found: false, reason: rate_limited \| not_found \| not_legacy}` (`not_legacy` has `product`) |
//! | `list_contacts(org_id)` | `[{id, label}]`, labels masked | `[]` |
//! | `send_login_info(contact_id)` | `{sent: true, to (masked), expires_minutes}` | `{sent: false, reason: rate_limited}` |
//! | `verified_contact()` | `{found: true, contact_id, first_name, company, masked}` | `{found: false}` |
//! | `find_existing_account(email)` | `{exists: true, mailed}` | `{exists: false}`, `{exists: false, reason: rate_limited}` |
//! | `send_email_code(email)` | `{sent: true, proof, minutes}` | `{sent: false, reason: rate_limited}` |
//! | `check_email_code(email, proof, typed)` | `{ok: true}` | `{ok: false, reason: expired \| wrong}` |
//! | `screen_account(profile)` | `{outcome: passed}`, `{outcome: review, hours}` | `{outcome: refused}` |
//! | `create_account(profile, review)` | `{created: true, org_id, username, review, hours}` | `{created: false, reason: limit}` |
//! | `request_contact(org_id, profile)` | `{requested: true, number, admins}` | `{requested: false, reason: rate_limited \| already_contact (with mailed) \| no_admin}` |
//!
//! An argument that is not what the effect takes (an invalid address, an
//! incomplete profile) fails the effect, and with it the flow, politely.

mod create;
pub mod followup;
pub mod limits;
mod proof;
mod refusal;
pub mod requests;
pub mod screening;
pub mod tokens;

pub use refusal::Refusal;

use std::sync::Arc;

use serde_json::{json, Value};

use crate::{
    config::Settings,
    directory::{Directory, Found, Search},
    engine::{EffectCall, EffectError, Effects},
    store::{outbox::NewMail, requests::NewRecoveryToken, Quota, Write},
};

/// Declares every account effect once: its name in flows, its arity, and the
/// function that performs it. From this table come [`EFFECTS`] (what
/// `flows check` knows) and [`register`].
macro_rules! account_effects {
    ($($name:literal / $arity:literal => $f:path),* $(,)?) => {
        /// Names and arities of the effects [`register`] adds.
        pub const EFFECTS: &[(&str, usize)] = &[$(($name, $arity)),*];

        /// Registers the account effects on `effects`.
        pub fn register(effects: &mut Effects, directory: Directory, settings: Arc<Settings>) {
            $(
                let (d, s) = (directory.clone(), settings.clone());
                effects.register_with_writes($name, $arity, move |mut call| {
                    let (d, s) = (d.clone(), s.clone());
                    async move {
                        let result = $f(&d, &s, &mut call).await;
                        call.done(result)
                    }
                });
            )*
        }
    };
}

account_effects! {
    "find_company" / 2 => find_company,
    "find_company_by_contract" / 2 => find_company_by_contract,
    "list_contacts" / 1 => list_contacts,
    "send_login_info" / 1 => send_login_info,
    "verified_contact" / 0 => verified_contact,
    "find_existing_account" / 1 => create::find_existing,
    "send_email_code" / 1 => proof::send,
    "check_email_code" / 3 => proof::check,
    "screen_account" / 1 => create::screen,
    "create_account" / 2 => create::create,
    "request_contact" / 2 => requests::request,
}

async fn find_company(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let kind = call.arg_str(0)?;
    let value = call.arg_str(1)?;
    let search = match kind.as_str() {
        "username" => Search::Username { value },
        "email" => Search::Email { value },
        "serial" => Search::Serial { value },
        "machine_code" => Search::MachineCode { value },
        other => return Err(EffectError::Failed(format!("find_company: unknown search kind {other:?}"))),
    };
    search_company(d, s, call, search).await
}

async fn find_company_by_contract(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let search = Search::Contract { number: call.arg_str(0)?, admin_last_name: call.arg_str(1)? };
    search_company(d, s, call, search).await
}

/// The company's contacts as `{id, label}`, masked unless configured
/// otherwise: the flow never holds more than it may show.
async fn list_contacts(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let org_id = call.arg_str(0)?;
    let contacts = d.contacts(&org_id).await.map_err(EffectError::retry)?;
    call.audit("contact_list_shown", &org_id, json!({ "contacts": contacts.len() }));
    let mut seen = std::collections::HashMap::new();
    let list: Vec<Value> = contacts
        .iter()
        .map(|c| {
            let mut label = if s.directory.show_full_names {
                format!("{} {} ({})", c.first_name, c.last_name, c.email)
            } else {
                format!("{} {}. ({})", c.first_name, initial(&c.last_name), crate::mail::mask_email(&c.email))
            };
            // Masking can make two contacts look alike; the customer must
            // still be able to pick one.
            let n = seen.entry(label.clone()).and_modify(|n| *n += 1).or_insert(1);
            if *n > 1 {
                label = format!("{label} #{n}");
            }
            json!({ "id": c.id, "label": label })
        })
        .collect();
    Ok(Value::Array(list))
}

fn initial(name: &str) -> String {
    name.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_default()
}

/// What a search found, as flows see it: `found`, and the company's Org ID
/// and name, or why not.
async fn search_company(
    d: &Directory,
    s: &Settings,
    call: &mut EffectCall,
    search: Search,
) -> Result<Value, EffectError> {
    let identifier = match &search {
        Search::Username { value } | Search::Email { value } => crate::directory::keys::lower(value),
        Search::Serial { value } | Search::MachineCode { value } => crate::directory::keys::code(value),
        Search::Contract { number, .. } => crate::directory::keys::code(number),
    };
    let kind =
        serde_json::to_value(&search).ok().and_then(|v| v["by"].as_str().map(str::to_string)).unwrap_or_default();
    let quotas = limits::search(s, &limits::identity(call), &identifier);
    if let Some(wait) = limits::take(d.store(), call, &quotas).await? {
        call.audit("search_refused", &identifier, json!({ "by": kind, "reason": "rate limit" }));
        return Ok(json!({ "found": false, "reason": Refusal::RateLimited, "wait_minutes": limits::minutes(wait) }));
    }
    let found = d.search(&search).await.map_err(EffectError::retry)?;
    let outcome = match &found {
        Found::Company { company } => {
            json!({ "found": true, "org_id": company.org_id, "name": company.name, "country": company.country })
        }
        Found::NotFound => json!({ "found": false, "reason": Refusal::NotFound }),
        Found::NotLegacy { product } => {
            json!({ "found": false, "reason": Refusal::NotLegacy, "product": product })
        }
    };
    call.audit(
        "search",
        &identifier,
        json!({ "by": kind, "found": outcome["found"], "org_id": outcome.get("org_id") }),
    );
    Ok(outcome)
}

/// The contact whose address the customer provably wrote from (a mail
/// whose sender our receiving server authenticated), if any: such a
/// customer may skip the search. Unverified senders get `found: false`
/// without a lookup, so the address alone never reveals anything.
async fn verified_contact(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let Some(how) = call.context.verified.clone() else {
        return Ok(json!({ "found": false }));
    };
    let Ok(sender) = crate::domain::EmailAddress::parse(&call.context.sender) else {
        // A chat identity (a Discord user id) is no address on record.
        return Ok(json!({ "found": false }));
    };
    // It answers "is this address on record?" as a search by e-mail would,
    // so it is counted as one (refused: the customer just searches).
    let quotas = limits::search(s, &limits::identity(call), &sender.key());
    if limits::take(d.store(), call, &quotas).await?.is_some() {
        return Ok(json!({ "found": false }));
    }
    let Some(contact) = d.contact_by_email(&sender).await.map_err(EffectError::retry)? else {
        return Ok(json!({ "found": false }));
    };
    let company = d.company(&contact.org_id).await.map_err(EffectError::retry)?.map(|c| c.name).unwrap_or_default();
    call.audit("verified_sender_matched", &format!("contact:{}", contact.id), json!({ "verified_by": how }));
    Ok(json!({
        "found": true,
        "contact_id": contact.id,
        "first_name": contact.first_name,
        "company": company,
        "masked": crate::mail::mask_email(&contact.email),
    }))
}

/// Mails a contact their user name and a single-use reset link, to the
/// address on record and nowhere else.
async fn send_login_info(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let contact_id = call.arg_i64(0)?;
    // The contact and its company's name in one read (this is the hot path
    // of every recovery).
    let found = d.contact_and_company(contact_id).await.map_err(EffectError::retry)?;
    let Some((contact, company)) = found.filter(|(c, _)| c.status == "active") else {
        return Err(EffectError::Failed(format!("no active contact {contact_id}")));
    };
    queue_login_info(d, s, call, &contact, &company).await
}

/// The name of a contact's company, for mails that name it.
pub(crate) async fn company_name(d: &Directory, org_id: &str) -> Result<String, EffectError> {
    Ok(d.company(org_id).await.map_err(EffectError::retry)?.map(|c| c.name).unwrap_or_default())
}

/// The login mail to a contact, within the contact's recovery quota: what
/// [`send_login_info`] sends, and what an address already on record gets
/// when someone (who proved it is theirs) asks to create or join an account
/// with it.
pub(crate) async fn queue_login_info(
    d: &Directory,
    s: &Settings,
    call: &mut EffectCall,
    contact: &crate::directory::Contact,
    company: &str,
) -> Result<Value, EffectError> {
    let contact_id = contact.id;
    let subject = format!("contact:{contact_id}");
    let now = call.context.now_ms;
    let quota = [Quota::new(format!("login_info:{subject}"), s.limits.recovery_mails_per_contact)];
    if let Some(wait) = limits::take(d.store(), call, &quota).await? {
        call.audit("login_info_refused", &subject, json!({ "reason": "rate limit" }));
        return Ok(json!({ "sent": false, "reason": Refusal::RateLimited, "wait_minutes": limits::minutes(wait) }));
    }
    // Only the hash is stored; the token itself goes into the mail alone.
    let (token, token_hash) = tokens::new();
    let ttl = s.mail.token_ttl;
    call.write(Write::RecoveryToken(NewRecoveryToken {
        token_hash,
        contact_id,
        expires_at: now + ttl.as_millis() as i64,
    }));
    call.write(Write::Mail(NewMail {
        message_id: crate::mail::new_message_id(&s.mail.from),
        template: "login_info".into(),
        to: contact.email.clone(),
        context: json!({
            "first_name": contact.first_name,
            "username": contact.username,
            "company": company,
            "reset_url": s.mail.reset_url.replace("{token}", &token),
            "expires_minutes": ttl.as_secs() / 60,
        }),
    }));
    call.audit("login_info_sent", &subject, json!({ "org_id": contact.org_id }));
    // The journal and the chat see only the masked address, never the token.
    Ok(json!({ "sent": true, "to": crate::mail::mask_email(&contact.email), "expires_minutes": ttl.as_secs() / 60 }))
}
