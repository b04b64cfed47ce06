//! Creating an account (Org ID) from a complete profile: the duplicate
//! check, the quick screen, and the records, mail and follow-up job, written
//! with the turn.

use serde::Deserialize;
use serde_json::{json, Value};

use super::screening::{self, Applicant, Outcome};
use crate::{
    config::Settings,
    directory::{keys, Company, Directory},
    engine::{EffectCall, EffectError},
    store::{on_db, Write},
};

/// The profile the create_account flow collects (validated field by field
/// as the customer answered).
#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    pub company: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub street: String,
    pub city: String,
    #[serde(default)]
    pub region: String,
    pub postal_code: String,
    pub country: String,
    pub phone: String,
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
    let p: Profile = serde_json::from_value(value).map_err(|e| EffectError::Failed(format!("profile: {e}")))?;
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
    crate::text::parse_email(&p.email).map_err(EffectError::Failed)?;
    crate::text::check_postal_code(&p.postal_code, &p.country).map_err(EffectError::Failed)?;
    crate::text::parse_phone(&p.phone, Some(&p.country)).map_err(EffectError::Failed)?;
    Ok(p)
}

/// An existing record for this e-mail address, or this company name in this
/// country: the customer is offered recovery instead of a second account.
pub(crate) async fn find_existing(d: &Directory, _: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let email = call.arg_str(0)?;
    let company = call.arg_str(1)?;
    let country = call.arg_str(2)?;
    if let Some(c) = d.contact_by_email(&email).await.map_err(EffectError::retry)? {
        call.audit("duplicate_check", &keys::lower(&email), json!({ "found": "email", "org_id": c.org_id }));
        return Ok(json!({ "exists": true, "by": "email", "contact_id": c.id, "org_id": c.org_id }));
    }
    let same = d.companies_named(&company, &country).await.map_err(EffectError::retry)?;
    if let Some(c) = same.first() {
        call.audit("duplicate_check", &keys::name(&company), json!({ "found": "company", "org_id": c.org_id }));
        return Ok(json!({ "exists": true, "by": "company", "org_id": c.org_id, "name": c.name }));
    }
    call.audit("duplicate_check", &keys::lower(&email), json!({ "found": null }));
    Ok(json!({ "exists": false }))
}

/// The quick screen: `passed`, `review` or `refused`.
pub(crate) async fn screen(_: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let p = profile(call)?;
    let person = format!("{} {}", p.first_name, p.last_name);
    let outcome = screening::quick(&s.screening, &Applicant { people: vec![&person], ..p.applicant() });
    call.audit("screening", &keys::name(&p.company), json!({ "stage": "quick", "result": outcome }));
    Ok(match outcome {
        Outcome::Passed => json!({ "outcome": "passed" }),
        Outcome::Review(_) => {
            json!({ "outcome": "review", "hours": s.screening.review_delay.as_secs().div_ceil(3600) })
        }
        Outcome::Refused(_) => json!({ "outcome": "refused" }),
    })
}

/// A user name nobody has: the e-mail's local part, then with a number.
pub(crate) async fn free_username(d: &Directory, email: &str) -> Result<String, EffectError> {
    let base: String =
        email.split('@').next().unwrap_or("user").chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
    let base = if base.is_empty() { "user".to_string() } else { base.to_lowercase() };
    for n in 0..1000 {
        let candidate = if n == 0 { base.clone() } else { format!("{base}{n}") };
        const SQL: &str = "SELECT COUNT(*) FROM contacts WHERE username_key = $1";
        let (taken,): (i64,) = on_db!(&d.store().db, p => sqlx::query_as(SQL).bind(&candidate).fetch_one(p).await.map_err(EffectError::retry)?);
        if taken == 0 {
            return Ok(candidate);
        }
    }
    Err(EffectError::Failed("no free user name".into()))
}

async fn free_org_id(d: &Directory) -> Result<String, EffectError> {
    loop {
        let id = format!("ORG-{:08}", rand::random::<u32>() % 100_000_000);
        if d.company(&id).await.map_err(EffectError::retry)?.is_none() {
            return Ok(id);
        }
    }
}

/// Creates the company and its administrator, mails the confirmation, and
/// for an account in review schedules the follow-up.
pub(crate) async fn create(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let p = profile(call)?;
    let review = call.args.get(1).and_then(Value::as_bool).unwrap_or(false);
    let org_id = free_org_id(d).await?;
    let username = free_username(d, &p.email).await?;
    let phone = crate::text::parse_phone(&p.phone, Some(&p.country)).map_err(EffectError::Failed)?;
    let company = Company {
        org_id: org_id.clone(),
        name: p.company.clone(),
        street: p.street.clone(),
        city: p.city.clone(),
        region: p.region.clone(),
        postal_code: p.postal_code.to_uppercase(),
        country: p.country.clone(),
        phone: phone.clone(),
        status: if review { "pending_review" } else { "active" }.into(),
    };
    call.write(Write::Company(company));
    call.write(Write::Contact {
        org_id: org_id.clone(),
        username: username.clone(),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        email: p.email.clone(),
        phone,
        role: "admin".into(),
    });
    let hours = s.screening.review_delay.as_secs().div_ceil(3600);
    call.write(Write::Mail {
        message_id: crate::mail::new_message_id(&s.mail.from),
        template: if review { "account_pending" } else { "account_created" }.into(),
        to: p.email.clone(),
        context: json!({ "first_name": p.first_name, "company": p.company, "org_id": org_id, "username": username, "hours": hours }),
    });
    if review {
        let due = call.context.now_ms + s.screening.review_delay.as_millis() as i64;
        call.write(Write::Job {
            kind: "rescreen".into(),
            payload: json!({ "org_id": org_id, "email": p.email }),
            due_at: due,
        });
    }
    call.audit(
        "account_created",
        &org_id,
        json!({ "username": username, "status": if review { "pending_review" } else { "active" } }),
    );
    Ok(json!({ "org_id": org_id, "username": username }))
}
