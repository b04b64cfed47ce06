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
    store::{on_db, ApplyWrites, Db, Store, Write},
};

const LEASE: Duration = Duration::from_secs(300);
const CLAIM: i64 = 20;
const MAX_ATTEMPTS: i64 = 10;

#[derive(Debug, sqlx::FromRow)]
struct Job {
    id: i64,
    kind: String,
    payload: String,
    attempts: i64,
}

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
    let jobs: Vec<Job> = match &store.db {
        Db::Sqlite(p) => {
            sqlx::query_as(
                "UPDATE jobs SET due_at = $1, attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' \
                 AND due_at <= $2 ORDER BY due_at LIMIT $3) RETURNING id, kind, payload, attempts",
            )
            .bind(until)
            .bind(now)
            .bind(CLAIM)
            .fetch_all(p)
            .await?
        }
        Db::Postgres(p) => {
            sqlx::query_as(
                "UPDATE jobs SET due_at = $1, attempts = attempts + 1 WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' \
                 AND due_at <= $2 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id, kind, payload, attempts",
            )
            .bind(until)
            .bind(now)
            .bind(CLAIM)
            .fetch_all(p)
            .await?
        }
    };
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
                const SQL: &str = "UPDATE jobs SET status = $1, last_error = $2 WHERE id = $3";
                on_db!(&store.db, p => sqlx::query(SQL).bind(status).bind(format!("{e:#}")).bind(job.id).execute(p).await.map(|_| ())?);
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
    let outcome = screening::full(
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
    // What the rules still cannot place stays in review for a person (the
    // audit log says why); nothing is approved on doubt.
    let (status, template) = match outcome {
        Outcome::Refused(_) => ("refused", Some("account_refused")),
        Outcome::Passed => ("active", Some("account_approved")),
        Outcome::Review(_) => ("pending_review", None),
    };
    let mut writes: Vec<Write> = admin
        .into_iter()
        .filter_map(|a| template.map(|t| (a, t)))
        .map(|(a, template)| Write::Mail {
            message_id: crate::mail::new_message_id(&settings.mail.from),
            template: template.into(),
            to: a.email,
            context: json!({
                "first_name": a.first_name, "company": company.name, "org_id": org_id, "username": a.username,
                "region": region_for(settings, &company.country),
            }),
        })
        .collect();
    writes.push(Write::Audit {
        channel: "system".into(),
        actor: "followup".into(),
        by_agent: None,
        action: "screening".into(),
        subject: org_id.to_string(),
        detail: json!({ "stage": "full", "result": outcome, "job": job.id }),
    });
    on_db!(&store.db, p => {
        let mut tx = p.begin().await?;
        sqlx::query("UPDATE companies SET status = $1, updated_at = $2 WHERE org_id = $3 AND status = 'pending_review'")
            .bind(status).bind(now).bind(org_id).execute(&mut *tx).await?;
        tx.apply_writes(&writes, now).await?;
        sqlx::query("UPDATE jobs SET status = 'done' WHERE id = $1").bind(job.id).execute(&mut *tx).await?;
        tx.commit().await?;
    });
    tracing::info!(org_id, status, "account review finished");
    Ok(())
}
