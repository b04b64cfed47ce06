//! Contact requests: someone not on their company's contact list asks to be
//! added. The company's administrators get a mail with a single-use link
//! (and the request number, for customer service); the decision, by link or
//! by an agent's command, creates the contact and welcomes them, or tells the
//! requester politely.

use serde_json::{json, Value};

use super::Refusal;
use crate::{
    config::Settings,
    directory::Directory,
    domain::{EmailAddress, OrgId, Phone},
    engine::{EffectCall, EffectError},
    store::{
        directory::NewContact,
        outbox::NewMail,
        requests::{NewContactRequest, RequestRef},
        Audit, Store, Write,
    },
};

/// The `request_contact(org_id, profile)` effect.
pub(crate) async fn request(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let org_id = OrgId::parse(&call.arg_str(0)?).map_err(|e| EffectError::Failed(format!("request_contact: {e}")))?;
    let profile = call.args.get(1).cloned().unwrap_or(Value::Null);
    let field = |k: &str| crate::text::clean_input(profile[k].as_str().unwrap_or_default(), 200);
    let (first, last) = (field("first_name"), field("last_name"));
    let email = EmailAddress::parse(&field("email")).map_err(|e| EffectError::Failed(e.to_string()))?;
    if first.is_empty() || last.is_empty() {
        return Err(EffectError::Failed("request_contact: a first and a last name are needed".into()));
    }
    // The names go to the company's administrators: no links in them.
    if crate::text::looks_like_link(&first) || crate::text::looks_like_link(&last) {
        return Err(EffectError::Failed("request_contact: names may not hold links".into()));
    }
    let company = d
        .company(&org_id)
        .await
        .map_err(EffectError::retry)?
        .ok_or_else(|| EffectError::Failed(format!("no company {org_id}")))?;
    let phone = match field("phone") {
        p if p.is_empty() => None,
        p => Some(Phone::parse(&p, Some(&company.country)).map_err(|e| EffectError::Failed(e.to_string()))?),
    };
    // It tells whether the address is on record, as a search would.
    let quotas = super::limits::search(s, &super::limits::identity(call), &email.key());
    if let Some(wait) = super::limits::take(d.store(), call, &quotas).await? {
        call.audit("contact_request_refused", &org_id, json!({ "reason": "rate limit" }));
        return Ok(
            json!({ "requested": false, "reason": Refusal::RateLimited, "wait_minutes": super::limits::minutes(wait) }),
        );
    }
    if let Some(existing) = d.contact_by_email(&email).await.map_err(EffectError::retry)? {
        // The flow proved the address is the customer's: it gets its own
        // login information, and the chat learns nothing more.
        call.audit("contact_request_refused", &org_id, json!({ "reason": "e-mail already a contact" }));
        let company = super::company_name(d, &existing.org_id).await?;
        let sent = super::queue_login_info(d, s, call, &existing, &company).await?;
        return Ok(json!({ "requested": false, "reason": Refusal::AlreadyContact, "mailed": sent["sent"] }));
    }
    let admins: Vec<_> =
        d.contacts(&org_id).await.map_err(EffectError::retry)?.into_iter().filter(|c| c.role == "admin").collect();
    if admins.is_empty() {
        return Ok(json!({ "requested": false, "reason": Refusal::NoAdmin }));
    }
    // Only the hash is stored; the token itself goes into the mails alone.
    let (token, token_hash) = super::tokens::new();
    let number = format!("CR-{:08}", rand::random::<u32>() % 100_000_000);
    call.write(Write::ContactRequest(NewContactRequest {
        number: number.clone(),
        org_id: org_id.clone(),
        first_name: first.clone(),
        last_name: last.clone(),
        email: email.clone(),
        phone,
        requester: call.context.sender.clone(),
        token_hash,
    }));
    for admin in &admins {
        call.write(Write::Mail(NewMail {
            message_id: crate::mail::new_message_id(&s.mail.from),
            template: "contact_request".into(),
            to: admin.email.clone(),
            context: json!({
                "admin_first_name": admin.first_name, "company": company.name, "first_name": first, "last_name": last,
                "email": email, "number": number, "decide_url": s.mail.contact_request_url.replace("{token}", &token),
            }),
        }));
    }
    call.audit("contact_requested", &org_id, json!({ "number": number, "admins": admins.len() }));
    Ok(json!({ "requested": true, "number": number, "admins": admins.len() }))
}

/// Who decides a request: an administrator through the mailed link, or an
/// agent by command.
#[derive(Debug, Clone)]
pub enum Decider {
    Link { token: String },
    Agent { name: String, number: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("no pending contact request matches (unknown, or already decided)")]
    NotPending,
    #[error("{0}")]
    Store(String),
}

/// Approves or declines a pending request, once: the contact is created and
/// welcomed, or the requester is told. Returns the request number.
pub async fn decide(
    store: &Store,
    settings: &Settings,
    by: Decider,
    approve: bool,
    now: i64,
) -> Result<String, DecisionError> {
    let err = |e: crate::store::StoreError| DecisionError::Store(e.to_string());
    let by_agent = match &by {
        Decider::Agent { name, .. } => Some(name.clone()),
        Decider::Link { .. } => None,
    };
    let (key, actor) = match &by {
        Decider::Link { token } => (super::tokens::hash(token), "admin link".to_string()),
        Decider::Agent { name, number } => (number.trim().to_uppercase(), format!("agent:{name}")),
    };
    let which = match &by {
        Decider::Link { .. } => RequestRef::TokenHash(&key),
        Decider::Agent { .. } => RequestRef::Number(&key),
    };
    let pending = store.open_request(which, expired_before(settings, now)).await.map_err(err)?;
    let req = pending.ok_or(DecisionError::NotPending)?;
    let directory = Directory::new(store.clone());
    let company = directory
        .company(&req.org_id)
        .await
        .map_err(|e| DecisionError::Store(e.to_string()))?
        .map(|c| c.name)
        .unwrap_or_default();
    let status = if approve { "approved" } else { "declined" };
    let decided_by = actor.clone();
    let username = if approve {
        Some(
            super::create::free_username(&directory, &req.email)
                .await
                .map_err(|e| DecisionError::Store(e.to_string()))?,
        )
    } else {
        None
    };
    let (template, context) = match &username {
        Some(u) => ("contact_welcome", json!({ "first_name": req.first_name, "company": company, "username": u })),
        None => ("contact_declined", json!({ "first_name": req.first_name, "company": company })),
    };
    let mut writes = Vec::new();
    if let Some(u) = &username {
        writes.push(Write::Contact(NewContact {
            org_id: req.org_id.clone(),
            username: u.clone(),
            first_name: req.first_name.clone(),
            last_name: req.last_name.clone(),
            email: req.email.clone(),
            phone: req.phone.clone(),
            role: "user".into(),
        }));
    }
    writes.push(Write::Mail(NewMail {
        message_id: crate::mail::new_message_id(&settings.mail.from),
        template: template.into(),
        to: req.email.clone(),
        context,
    }));
    writes.push(Write::Audit(Audit {
        // The agent's shell, or the administrator's mailed link.
        channel: if by_agent.is_some() { "cli" } else { "link" }.into(),
        actor,
        by_agent,
        action: format!("contact_request_{status}"),
        subject: req.org_id.to_string(),
        detail: json!({ "number": req.number, "decision": status, "username": username }),
    }));
    // Single use: only a request still pending changes.
    if !store.close_request(req.id, status, &decided_by, &writes, now).await.map_err(err)? {
        return Err(DecisionError::NotPending);
    }
    Ok(req.number)
}

/// A pending request as the page behind its link shows it.
#[derive(Debug, Clone)]
pub struct LinkedRequest {
    pub request: crate::store::requests::OpenRequest,
    /// The company's name.
    pub company: String,
}

/// The request an administrator's link decides, if it is still pending and
/// not expired; reads only.
pub async fn by_link(
    store: &Store,
    settings: &Settings,
    token: &str,
    now: i64,
) -> Result<Option<LinkedRequest>, crate::store::StoreError> {
    let hash = super::tokens::hash(token);
    let Some(request) = store.open_request(RequestRef::TokenHash(&hash), expired_before(settings, now)).await? else {
        return Ok(None);
    };
    let company = Directory::new(store.clone()).company(&request.org_id).await?.map(|c| c.name).unwrap_or_default();
    Ok(Some(LinkedRequest { request, company }))
}

pub use crate::store::requests::PendingRequest;

/// Every pending request, oldest first.
pub async fn pending(store: &Store) -> Result<Vec<PendingRequest>, crate::store::StoreError> {
    store.pending_requests().await
}

/// Requests made at or before this moment have expired.
fn expired_before(settings: &Settings, now: i64) -> i64 {
    now - settings.account.contact_request_ttl.as_millis() as i64
}

/// Expires requests nobody decided within `account.contact_request_ttl`
/// and tells each requester; returns how many expired. (Their links stopped
/// working at that moment already: [`decide`] checks the age too.)
pub async fn expire_due(store: &Store, settings: &Settings, now: i64) -> anyhow::Result<usize> {
    let due = store.requests_made_by(expired_before(settings, now), 100).await?;
    let directory = Directory::new(store.clone());
    let mut expired = 0;
    for req in due {
        let company = directory.company(&req.org_id).await?.map(|c| c.name).unwrap_or_default();
        let days = settings.account.contact_request_ttl.as_secs().div_ceil(86_400);
        let writes = [
            Write::Mail(NewMail {
                message_id: crate::mail::new_message_id(&settings.mail.from),
                template: "contact_expired".into(),
                to: req.email.clone(),
                context: json!({ "first_name": req.first_name, "company": company, "number": req.number, "days": days }),
            }),
            Write::Audit(Audit {
                channel: "system".into(),
                actor: "contact request expiry".into(),
                by_agent: None,
                action: "contact_request_expired".into(),
                subject: req.org_id.to_string(),
                detail: json!({ "number": req.number }),
            }),
        ];
        // Only a request still pending expires (an administrator may have
        // decided it a moment ago).
        if store.close_request(req.id, "expired", "expiry", &writes, now).await? {
            expired += 1;
        }
    }
    Ok(expired)
}
