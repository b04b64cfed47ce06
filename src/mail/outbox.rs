//! The outbox worker. Mails were queued by turns in the same transaction as
//! the step that caused them; this worker sends them, at least once and, with
//! a stable Message-ID, recognisably the same mail if ever sent twice.
//!
//! Workers claim due mails with a lease (`locked_until`) and a fencing token
//! (`claim_token`), so several processes (`serve`, `chat`, other instances on
//! PostgreSQL, where claims use `FOR UPDATE SKIP LOCKED`) never send the same
//! mail at the same time: while a mail is being sent, its worker renews that
//! mail's lease, and only while its token still holds the claim; marking the
//! mail sent or due again also needs the token. A claim that lapsed and went
//! to another worker is therefore never sent, nor changed, by the first, and a
//! worker that dies holds its mails no longer than one lease.
//! A failed attempt is retried with exponential backoff; a permanent SMTP
//! failure (5xx) or too many attempts marks the mail failed.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use lettre::{
    message::{header, Mailbox, MultiPart},
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use serde_json::Value;

pub use crate::store::outbox::Entry;
use crate::{
    config::{MailSettings, SmtpSecurity},
    store::{outbox::QueuedMail as Queued, Store},
};

/// How long a claimed mail stays reserved for the worker that claimed it.
/// Short, because a worker killed mid-round holds its claims this long; a
/// round stops starting sends once half of it has passed, and releases the
/// rest. The mail being sent has its lease renewed while the send runs.
const LEASE: Duration = Duration::from_secs(20);
/// The longest one send may take (lettre's 30 s is per SMTP command, and a
/// send is several); it is cut off there and retried later.
const SEND_TIMEOUT: Duration = Duration::from_secs(150);
/// Mails claimed per round.
const CLAIM: i64 = 50;

/// The `Auto-Submitted` header (RFC 3834): mail from frontdesk is never
/// answered automatically by well-behaved responders.
#[derive(Clone)]
struct AutoSubmitted(String);

impl header::Header for AutoSubmitted {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(s.to_string()))
    }

    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

enum Transport {
    Files(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct Outbox {
    store: Store,
    transport: Transport,
    from: Mailbox,
    templates: super::templates::Templates,
    max_attempts: u32,
    retry_base: Duration,
    lease: Duration,
    send_timeout: Duration,
    /// Where file-transport mails go (for messages to the operator).
    pub spool: Option<PathBuf>,
}

/// A mail as claimed by one round: its id and the round's fencing token.
#[derive(Clone, Copy)]
struct Claim<'a> {
    id: i64,
    token: &'a str,
}

impl Claim<'_> {
    /// A write under a claim that changed nothing: the claim had lapsed.
    fn check(self, held: bool) {
        if !held {
            tracing::error!(
                outbox_id = self.id,
                "the mail's claim lapsed while it was being sent; another worker owns it"
            );
        }
    }
}

enum Failure {
    /// Try again later.
    Transient(String),
    /// Never going to work (a 5xx, a broken template, a bad address).
    Permanent(String),
}

impl Outbox {
    pub fn new(store: Store, mail: &MailSettings, data_dir: &std::path::Path) -> anyhow::Result<Outbox> {
        let (transport, spool) = match &mail.smtp {
            None => {
                let dir = data_dir.join("mail").join("outbox");
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                (Transport::Files(AsyncFileTransport::new(&dir)), Some(dir))
            }
            Some(smtp) => {
                let builder = match smtp.security {
                    SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)?,
                    SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)?,
                    SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
                };
                let mut builder = builder.port(smtp.port).timeout(Some(Duration::from_secs(30)));
                if let Some(user) = &smtp.username {
                    let password = smtp.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
                    builder = builder
                        .credentials(lettre::transport::smtp::authentication::Credentials::new(user.clone(), password));
                }
                (Transport::Smtp(builder.build()), None)
            }
        };
        Ok(Outbox {
            store,
            transport,
            from: mail.from.parse().context("mail.from")?,
            templates: super::templates::Templates::of(&mail.templates_dir),
            max_attempts: mail.max_attempts,
            retry_base: mail.retry_base,
            lease: LEASE,
            send_timeout: SEND_TIMEOUT,
            spool,
        })
    }

    /// Other claim lease and send time-out (tests make them short).
    pub fn with_timings(mut self, lease: Duration, send_timeout: Duration) -> Outbox {
        self.lease = lease;
        self.send_timeout = send_timeout;
        self
    }

    /// Sends every mail due now; returns how many were sent.
    pub async fn run_once(&self, now_ms: i64) -> anyhow::Result<usize> {
        // The clock of this run: `now_ms` as it started, moved on by the time
        // spent, as other workers' clocks will be.
        let started = std::time::Instant::now();
        let now = || now_ms + started.elapsed().as_millis() as i64;
        let mut sent = 0;
        loop {
            let token = format!("{:032x}", rand::random::<u128>());
            let batch = self.claim(now(), &token).await?;
            if batch.is_empty() {
                return Ok(sent);
            }
            tracing::debug!(claimed = batch.len(), "outbox round");
            let claimed = std::time::Instant::now();
            let mut done = 0;
            for mail in &batch {
                if claimed.elapsed() > self.lease / 2 {
                    break;
                }
                done += 1;
                let claim = Claim { id: mail.id, token: &token };
                let outcome = match self.send_holding(mail, claim, &now).await? {
                    Some(outcome) => outcome,
                    None => continue,
                };
                let at = now();
                match outcome {
                    Ok(()) => {
                        self.finish(claim, "sent", None, at, mail.attempts + 1).await?;
                        tracing::debug!(message_id = %mail.message_id, outbox_id = mail.id, "mail sent");
                        crate::metrics::get().outbox("sent");
                        sent += 1;
                    }
                    Err(Failure::Permanent(why)) => {
                        tracing::error!(message_id = %mail.message_id, template = %mail.template, "mail failed permanently: {why}");
                        self.finish(claim, "failed", Some(&why), at, mail.attempts + 1).await?;
                        crate::metrics::get().outbox("failed");
                    }
                    Err(Failure::Transient(why)) => {
                        let attempts = mail.attempts + 1;
                        if attempts >= i64::from(self.max_attempts) {
                            tracing::error!(message_id = %mail.message_id, attempts, "mail failed after its last attempt: {why}");
                            self.finish(claim, "failed", Some(&why), at, attempts).await?;
                            crate::metrics::get().outbox("failed");
                        } else {
                            let wait = backoff(self.retry_base, attempts);
                            tracing::warn!(message_id = %mail.message_id, attempts, retry_in = ?wait, "mail not sent yet: {why}");
                            self.retry(claim, &why, at + wait.as_millis() as i64, attempts).await?;
                            crate::metrics::get().outbox("retry");
                        }
                    }
                }
            }
            // Not attempted in time: back to the queue at once.
            self.release(&token).await?;
            if done == 0 {
                return Ok(sent);
            }
        }
    }

    /// Sends one mail while keeping its claim alive: the lease is renewed to
    /// one [`LEASE`] ahead every quarter lease for as long as the send runs
    /// (cut off at the send time-out), so a slow relay never lets another
    /// worker take the mail, and a worker that dies mid-send holds it one
    /// lease at most. `None` if the claim was lost (it lapsed and another
    /// worker owns the mail): then this worker does not send, or stops
    /// sending, that mail.
    async fn send_holding(
        &self,
        mail: &Queued,
        claim: Claim<'_>,
        now: &impl Fn() -> i64,
    ) -> anyhow::Result<Option<Result<(), Failure>>> {
        let lost = || {
            tracing::warn!(message_id = %mail.message_id, "claim lapsed and was taken by another worker; not sending");
            Ok(None)
        };
        if !self.extend(claim, self.lease_end(now())).await? {
            return lost();
        }
        let send = tokio::time::timeout(self.send_timeout, self.send(mail));
        tokio::pin!(send);
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + self.lease / 4, self.lease / 4);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                outcome = &mut send => {
                    return Ok(Some(outcome.unwrap_or_else(|_| {
                        Err(Failure::Transient(format!("no answer within {:?}", self.send_timeout)))
                    })));
                }
                _ = beat.tick() => match self.extend(claim, self.lease_end(now())).await {
                    Ok(true) => {}
                    Ok(false) => return lost(),
                    // The store is out of reach: so it is for every other
                    // worker, and the claim holds until it lapses.
                    Err(e) => tracing::warn!(message_id = %mail.message_id, "renewing the claim: {e:#}"),
                },
            }
        }
    }

    /// When a lease taken or renewed at `now` runs out.
    fn lease_end(&self, now: i64) -> i64 {
        now + self.lease.as_millis() as i64
    }

    /// Gives back whatever this claim still holds.
    async fn release(&self, token: &str) -> anyhow::Result<()> {
        Ok(self.store.release_mail_claims(token).await?)
    }

    /// Moves a mail's lease to `until` if its token still holds the claim.
    async fn extend(&self, claim: Claim<'_>, until: i64) -> anyhow::Result<bool> {
        Ok(self.store.extend_mail_claim(claim.id, claim.token, until).await?)
    }

    async fn claim(&self, now: i64, token: &str) -> anyhow::Result<Vec<Queued>> {
        Ok(self.store.claim_mails(now, self.lease_end(now), token, CLAIM).await?)
    }

    async fn finish(
        &self,
        claim: Claim<'_>,
        status: &str,
        error: Option<&str>,
        now: i64,
        attempts: i64,
    ) -> anyhow::Result<()> {
        claim.check(self.store.finish_mail(claim.id, claim.token, status, error, now, attempts).await?);
        Ok(())
    }

    async fn retry(&self, claim: Claim<'_>, error: &str, at: i64, attempts: i64) -> anyhow::Result<()> {
        claim.check(self.store.retry_mail(claim.id, claim.token, error, at, attempts).await?);
        Ok(())
    }

    async fn send(&self, mail: &Queued) -> Result<(), Failure> {
        let context: Value =
            serde_json::from_str(&mail.context).map_err(|e| Failure::Permanent(format!("stored context: {e}")))?;
        let rendered = super::templates::render(&self.templates, &mail.template, &context)
            .map_err(|e| Failure::Permanent(format!("{e:#}")))?;
        let to: Mailbox =
            mail.to_addr.parse().map_err(|e| Failure::Permanent(format!("recipient {:?}: {e}", mail.to_addr)))?;
        // Answers to inbound mail carry their threading in `_headers`.
        let headers = &context["_headers"];
        let auto = headers["auto_submitted"].as_str().unwrap_or("auto-generated");
        let mut builder = Message::builder()
            .message_id(Some(format!("<{}>", mail.message_id)))
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .header(AutoSubmitted(if auto == "auto-replied" { auto } else { "auto-generated" }.into()));
        if let Some(id) = headers["in_reply_to"].as_str() {
            builder = builder.in_reply_to(format!("<{id}>"));
        }
        let references: Vec<String> = headers["references"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(|r| format!("<{r}>")).collect())
            .unwrap_or_default();
        if !references.is_empty() {
            builder = builder.references(references.join(" "));
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
            .map_err(|e| Failure::Permanent(format!("building the message: {e}")))?;
        match &self.transport {
            Transport::Files(t) => t.send(message).await.map(|_| ()).map_err(|e| Failure::Transient(e.to_string())),
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    Failure::Permanent(e.to_string())
                } else {
                    Failure::Transient(e.to_string())
                }
            }),
        }
    }
}

/// `base` (30 s by default), then twice as long each time, up to an hour,
/// with ±20 % jitter so a recovered server is not hit by every retry at once.
fn backoff(base: Duration, attempts: i64) -> Duration {
    let wait = base.saturating_mul(1 << (attempts - 1).clamp(0, 7) as u32).min(Duration::from_secs(3600));
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    wait.mul_f64(jitter)
}

/// Every mail in the outbox, in the order queued.
pub async fn entries(store: &Store) -> Result<Vec<Entry>, crate::store::StoreError> {
    store.outbox_entries().await
}
