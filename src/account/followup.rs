//! Durable follow-ups (the `jobs` table): the full review of an account in
//! review, run when its waiting time is over, which mails the customer the
//! outcome. Jobs survive restarts; a worker claims a due job by pushing its
//! due time past a lease (with `SKIP LOCKED` on PostgreSQL), so a worker
//! that dies mid-job leaves it to be picked up again.

use std::time::Duration;

use serde_json::{json, Value};

use super::screening::{self, Applicant, Outcome};
use crate::{
    config::Settings,
    directory::Directory,
    store::{outbox::NewMail, Audit, Job, Store, Write},
};

const LEASE: Duration = Duration::from_secs(300);
const CLAIM: i64 = 20;
const MAX_ATTEMPTS: i64 = 10;

/// The regional customer service for a country, for mails that point there.
fn region_for(settings: &Settings, country: &str) -> Value {
    let regions = settings.flow_settings["escalate"]["regions"].as_array().cloned().unwrap_or_default();
    regions
        .iter()
        .find(|r| r["countries"].as_array().is_some_and(|c| c.iter().any(|c| c == country)))
        .or_else(|| regions.iter().find(|r| r["default"] == true))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Runs every job due at `now`; returns how many finished.
pub async fn run_due(store: &Store, settings: &Settings, now: i64) -> anyhow::Result<usize> {
    let until = now + LEASE.as_millis() as i64;
    let jobs = store.claim_jobs(now, until, CLAIM).await?;
    let mut done = 0;
    for job in jobs {
        let result = match job.kind.as_str() {
            "rescreen" => rescreen(store, settings, &job, now).await,
            other => Err(anyhow::anyhow!("unknown job kind {other:?}")),
        };
        match result {
            Ok(()) => done += 1,
            Err(e) => {
                let status = if job.attempts >= MAX_ATTEMPTS { "failed" } else { "pending" };
                tracing::warn!(job = job.id, kind = %job.kind, attempts = job.attempts, status, "job failed: {e:#}");
                store.job_failed(job.id, status, &format!("{e:#}")).await?;
            }
        }
    }
    Ok(done)
}

/// The full review of an account that waited in review: the company becomes
/// active or refused, and its administrator is told by mail.
async fn rescreen(store: &Store, settings: &Settings, job: &Job, now: i64) -> anyhow::Result<()> {
    let payload: Value = serde_json::from_str(&job.payload)?;
    let org_id = payload["org_id"].as_str().ok_or_else(|| anyhow::anyhow!("payload without org_id"))?;
    let directory = Directory::new(store.clone());
    let company = directory.company(org_id).await?.ok_or_else(|| anyhow::anyhow!("no company {org_id}"))?;
    let admin = directory.contacts(org_id).await?.into_iter().find(|c| c.role == "admin");
    let person = admin.as_ref().map(|a| format!("{} {}", a.first_name, a.last_name)).unwrap_or_default();
    let mut outcome = screening::full(
        &settings.screening,
        &Applicant {
            company: &company.name,
            people: vec![&person],
            country: &company.country,
            region: &company.region,
            city: &company.city,
            postal_code: &company.postal_code,
        },
    );
    // A company of the same name was on record when it was created: a
    // person decides whether it is a second account of the same company.
    if let (Outcome::Passed, Some(other)) = (&outcome, payload["duplicate_of"].as_str()) {
        outcome = Outcome::Review(format!("a company of the same name is on record: {other}"));
    }
    crate::metrics::get().screened(outcome.word());
    // What the rules still cannot place stays in review for a person (the
    // audit log says why); nothing is approved on doubt.
    let (status, template) = match outcome {
        Outcome::Refused(_) => ("refused", Some("account_refused")),
        Outcome::Passed => ("active", Some("account_approved")),
        Outcome::Review(_) => ("pending_review", None),
    };
    let audit = Write::Audit(Audit {
        channel: "system".into(),
        actor: "followup".into(),
        by_agent: None,
        action: "screening".into(),
        subject: org_id.to_string(),
        detail: json!({ "stage": "full", "result": outcome, "job": job.id }),
    });
    let review = Review { company: &company, admin, status, template, audit };
    review.apply(store, settings, Some(job.id), now).await?;
    tracing::info!(org_id, status, "account review finished");
    Ok(())
}

/// The end of a review: the company's new status, the mail to its
/// administrator (none while it stays in review) and the audit entry, in one
/// transaction that changes only a company still in review.
struct Review<'a> {
    company: &'a crate::directory::Company,
    admin: Option<crate::directory::Contact>,
    status: &'static str,
    template: Option<&'static str>,
    audit: Write,
}

impl Review<'_> {
    /// Whether the company was still in review (and so changed).
    async fn apply(self, store: &Store, settings: &Settings, job: Option<i64>, now: i64) -> anyhow::Result<bool> {
        let org_id = &self.company.org_id;
        let mut writes: Vec<Write> = self
            .admin
            .into_iter()
            .filter_map(|a| self.template.map(|t| (a, t)))
            .map(|(a, template)| {
                Write::Mail(NewMail {
                    message_id: crate::mail::new_message_id(&settings.mail.from),
                    template: template.into(),
                    to: a.email,
                    context: json!({
                        "first_name": a.first_name, "company": self.company.name, "org_id": org_id,
                        "username": a.username, "region": region_for(settings, &self.company.country),
                    }),
                })
            })
            .collect();
        writes.push(self.audit);
        let changed = store.end_review(org_id, self.status, job, &writes, now).await?;
        Ok(changed)
    }
}

/// A person decides an account the review left to them (or a possible
/// duplicate): approved or refused, the administrator told by mail, the
/// agent's name in the audit log. `false` when the company is not in review.
pub async fn decide(
    store: &Store,
    settings: &Settings,
    org_id: &str,
    approve: bool,
    agent: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let directory = Directory::new(store.clone());
    let Some(company) = directory.company(org_id).await?.filter(|c| c.status == "pending_review") else {
        return Ok(false);
    };
    let admin = directory.contacts(org_id).await?.into_iter().find(|c| c.role == "admin");
    let (status, template) = if approve { ("active", "account_approved") } else { ("refused", "account_refused") };
    let audit = Write::agent_audit("cli", agent, "screening_decided", org_id, json!({ "status": status }));
    let review = Review { company: &company, admin, status, template: Some(template), audit };
    review.apply(store, settings, None, now).await
}
