//! Creating an account (Org ID) from a complete profile: the duplicate
//! check, the quick screen, and the records, mail and follow-up job, written
//! with the turn.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    limits,
    screening::{self, Applicant, Outcome},
    Refusal,
};
use crate::{
    config::Settings,
    directory::{keys, Company, Directory},
    domain::{Country, EmailAddress, OrgId, Phone},
    engine::{EffectCall, EffectError},
    store::{directory::NewContact, outbox::NewMail, NewJob, Quota, Write},
};

/// The profile the create_account flow collects, as the flow hands it over.
#[derive(Debug, Clone, Deserialize)]
struct RawProfile {
    company: String,
    first_name: String,
    last_name: String,
    email: String,
    street: String,
    city: String,
    #[serde(default)]
    region: String,
    postal_code: String,
    country: String,
    phone: String,
}

/// A complete profile, every field checked: what an account is created from.
#[derive(Debug, Clone)]
pub struct Profile {
    pub company: String,
    pub first_name: String,
    pub last_name: String,
    pub email: EmailAddress,
    pub street: String,
    pub city: String,
    pub region: String,
    /// Upper case, valid for the country.
    pub postal_code: String,
    pub country: Country,
    pub phone: Phone,
}

impl Profile {
    fn applicant(&self) -> Applicant<'_> {
        Applicant {
            company: &self.company,
            people: Vec::new(),
            country: &self.country,
            region: &self.region,
            city: &self.city,
            postal_code: &self.postal_code,
        }
    }
}

pub(crate) fn profile(call: &EffectCall) -> Result<Profile, EffectError> {
    let value = call.args.first().cloned().unwrap_or(Value::Null);
    let p: RawProfile = serde_json::from_value(value).map_err(|e| EffectError::Failed(format!("profile: {e}")))?;
    // The flow validated each answer; check again at the boundary, so that
    // no record is ever created from an incomplete profile.
    let text = crate::text::clean_input;
    for (field, v) in [
        ("company", &p.company),
        ("first_name", &p.first_name),
        ("last_name", &p.last_name),
        ("street", &p.street),
        ("city", &p.city),
    ] {
        if text(v, 200).is_empty() {
            return Err(EffectError::Failed(format!("profile: {field} is empty")));
        }
    }
    // Names go into mails to this address and to administrators: no links
    // or addresses in them, whatever the flow let through.
    for (field, v) in [("company", &p.company), ("first_name", &p.first_name), ("last_name", &p.last_name)] {
        if crate::text::looks_like_link(v) {
            return Err(EffectError::Failed(format!("profile: {field} may not hold a link")));
        }
    }
    let failed = |e: &dyn std::fmt::Display| EffectError::Failed(format!("profile: {e}"));
    let email = EmailAddress::parse(&p.email).map_err(|e| failed(&e))?;
    let country = Country::parse(&p.country).map_err(|e| failed(&e))?;
    crate::text::check_postal_code(&p.postal_code, &country).map_err(|e| failed(&e))?;
    let phone = Phone::parse(&p.phone, Some(&country)).map_err(|e| failed(&e))?;
    Ok(Profile {
        company: p.company,
        first_name: p.first_name,
        last_name: p.last_name,
        email,
        street: p.street,
        city: p.city,
        region: p.region,
        postal_code: p.postal_code.trim().to_uppercase(),
        country,
        phone,
    })
}

/// The `find_existing_account(email)` effect, for an address the customer
/// has just proven: when a contact has it, that address gets its login
/// information (within the recovery quota) and the flow learns only
/// `{exists: true}`. Counted as a search.
pub(crate) async fn find_existing(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let email = EmailAddress::parse(&call.arg_str(0)?).map_err(|e| EffectError::Failed(e.to_string()))?;
    let key = email.key();
    let quotas = limits::search(s, &limits::identity(call), &key);
    if let Some(wait) = limits::take(d.store(), call, &quotas).await? {
        call.audit("search_refused", &key, json!({ "by": "duplicate_check", "reason": "rate limit" }));
        return Ok(json!({ "exists": false, "reason": Refusal::RateLimited, "wait_minutes": limits::minutes(wait) }));
    }
    let Some(contact) = d.contact_by_email(&email).await.map_err(EffectError::retry)? else {
        call.audit("duplicate_check", &key, json!({ "found": null }));
        return Ok(json!({ "exists": false }));
    };
    call.audit("duplicate_check", &key, json!({ "found": "email", "org_id": contact.org_id }));
    let company = super::company_name(d, &contact.org_id).await?;
    let sent = super::queue_login_info(d, s, call, &contact, &company).await?;
    Ok(json!({ "exists": true, "mailed": sent["sent"] }))
}

/// The quick screen: `passed`, `review` or `refused`.
pub(crate) async fn screen(_: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let p = profile(call)?;
    let person = format!("{} {}", p.first_name, p.last_name);
    let outcome = screening::quick(&s.screening, &Applicant { people: vec![&person], ..p.applicant() });
    crate::metrics::get().screened(outcome.word());
    call.audit("screening", &keys::name(&p.company), json!({ "stage": "quick", "result": outcome }));
    Ok(match outcome {
        Outcome::Passed => json!({ "outcome": "passed" }),
        Outcome::Review(_) => {
            json!({ "outcome": "review", "hours": s.screening.review_delay.as_secs().div_ceil(3600) })
        }
        Outcome::Refused(_) => json!({ "outcome": "refused" }),
    })
}

/// A user name nobody has: the e-mail's local part, then with a number,
/// then with a random suffix, which never runs out (a run of taken names
/// costs a few lookups, not a failed account).
pub(crate) async fn free_username(d: &Directory, email: &EmailAddress) -> Result<String, EffectError> {
    let base: String = email.local_part().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').take(40).collect();
    let base = if base.is_empty() { "user".to_string() } else { base.to_lowercase() };
    let mut tries = 0u32;
    loop {
        let candidate = match tries {
            0 => base.clone(),
            1..=9 => format!("{base}{}", tries + 1),
            // Six random characters: a name is free on the first try unless
            // millions share the base; each further try adds a character.
            n => {
                let len = 6 + (n as usize - 10) / 4;
                let suffix: String = (0..len)
                    .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rand::random::<usize>() % 32]))
                    .collect();
                format!("{base}.{suffix}")
            }
        };
        if !d.username_taken(&candidate).await.map_err(EffectError::retry)? {
            return Ok(candidate);
        }
        tries += 1;
    }
}

async fn free_org_id(d: &Directory) -> Result<OrgId, EffectError> {
    loop {
        let id = OrgId::parse(&format!("ORG-{:08}", rand::random::<u32>() % 100_000_000)).expect("an Org ID");
        if d.company(&id).await.map_err(EffectError::retry)?.is_none() {
            return Ok(id);
        }
    }
}

/// Creates the company and its administrator, mails the confirmation, and
/// for an account in review schedules the follow-up.
pub(crate) async fn create(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let p = profile(call)?;
    let mut review = call.args.get(1).and_then(Value::as_bool).unwrap_or(false);
    let caps = [
        Quota::new(format!("create:who:{}", limits::identity(call)), s.limits.creations_per_identity),
        Quota::new("create:all", s.limits.creations),
    ];
    if limits::take(d.store(), call, &caps).await?.is_some() {
        call.audit("account_refused", &keys::name(&p.company), json!({ "reason": "creation limit" }));
        return Ok(json!({ "created": false, "reason": Refusal::Limit }));
    }
    // A company of that name in that country: never confirmed in the chat
    // (nor its spelling on record); the account waits for a person, as one
    // in screening review does, and the review job knows why.
    let duplicate_of =
        d.companies_named(&p.company, &p.country).await.map_err(EffectError::retry)?.first().map(|c| c.org_id.clone());
    review |= duplicate_of.is_some();
    let org_id = free_org_id(d).await?;
    let username = free_username(d, &p.email).await?;
    let company = Company {
        org_id: org_id.clone(),
        name: p.company.clone(),
        street: p.street.clone(),
        city: p.city.clone(),
        region: p.region.clone(),
        postal_code: p.postal_code.clone(),
        country: p.country.clone(),
        phone: p.phone.clone(),
        status: if review { "pending_review" } else { "active" }.into(),
    };
    call.write(Write::Company(company));
    call.write(Write::Contact(NewContact {
        org_id: org_id.clone(),
        username: username.clone(),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        email: p.email.clone(),
        phone: Some(p.phone.clone()),
        role: "admin".into(),
    }));
    let hours = s.screening.review_delay.as_secs().div_ceil(3600);
    call.write(Write::Mail(NewMail {
        message_id: crate::mail::new_message_id(&s.mail.from),
        template: if review { "account_pending" } else { "account_created" }.into(),
        to: p.email.clone(),
        context: json!({ "first_name": p.first_name, "company": p.company, "org_id": org_id, "username": username, "hours": hours }),
    }));
    if review {
        let due = call.context.now_ms + s.screening.review_delay.as_millis() as i64;
        call.write(Write::Job(NewJob {
            kind: "rescreen".into(),
            payload: json!({ "org_id": org_id, "email": p.email, "duplicate_of": duplicate_of }),
            due_at: due,
        }));
    }
    call.audit(
        "account_created",
        &org_id,
        json!({
            "username": username,
            "status": if review { "pending_review" } else { "active" },
            "duplicate_of": duplicate_of,
        }),
    );
    Ok(json!({ "created": true, "org_id": org_id, "username": username, "review": review, "hours": hours }))
}
