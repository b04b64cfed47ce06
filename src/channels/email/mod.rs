//! The e-mail channel. Support mail arrives over IMAP ([`imap`]), from a
//! Maildir-style folder ([`maildir`]) or from files (`frontdesk email
//! ingest`); every route ends in [`EmailChannel::handle`], so dedupe, loop
//! safety and routing are the same everywhere.
//!
//! Exactly once: a mail is recorded (`mail_received`, by Message-ID) in the
//! same transaction as the turn it causes and the answer it queues, together
//! with the mailbox checkpoint. A crash before that commit leaves the mail
//! unrecorded, and it is handled again; after it, the record stops it.

pub mod auth;
pub mod dkim;
pub mod imap;
pub mod ingest;
pub mod maildir;
pub mod parse;
pub mod quotes;
pub mod reply;
pub mod safety;
mod served;
pub mod stages;

use std::sync::Arc;

use stages::Stage;

use crate::{
    config::Settings,
    domain::EmailAddress,
    engine::{Engine, EngineError, Inbound, ReplySink},
    store::{MailCheckpoint, MailReceived, Quota, Status, StoreError, Taken, Write},
};
pub use safety::Skip;
pub use served::served;

pub const CHANNEL: &str = "email";

/// Where a mail came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Imap { mailbox: String, uidvalidity: u32, uid: u32 },
    Maildir,
    Ingest,
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Imap { mailbox, .. } => format!("imap:{mailbox}"),
            Source::Maildir => "maildir".into(),
            Source::Ingest => "ingest".into(),
        }
    }

    /// `writes`, and the mailbox checkpoint this mail moves, if any.
    fn with_checkpoint(&self, mut writes: Vec<Write>) -> Vec<Write> {
        writes.extend(self.checkpoint());
        writes
    }

    fn checkpoint(&self) -> Option<Write> {
        match self {
            Source::Imap { mailbox, uidvalidity, uid } => Some(Write::MailCheckpoint(MailCheckpoint {
                mailbox: mailbox.clone(),
                uidvalidity: i64::from(*uidvalidity),
                uid: i64::from(*uid),
            })),
            _ => None,
        }
    }
}

/// What became of one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new conversation; the first answer is queued.
    Answered { conversation_id: i64 },
    /// A reply that continued a conversation; the next answer is queued.
    Continued { conversation_id: i64 },
    /// Answered with a short notice only (a mail too large to read).
    Notified(&'static str),
    /// Recorded and deliberately not answered.
    Skipped(Skip),
    /// Handled before (the same Message-ID); nothing was done.
    AlreadyHandled,
    /// The flow failed on this mail: the customer was sent the apology
    /// with the way to a person, and the log has the flow's error.
    FlowFailed { conversation_id: i64 },
}

impl Outcome {
    /// Its name in the metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Answered { .. } => "answered",
            Outcome::Continued { .. } => "continued",
            Outcome::Notified(_) => "notified",
            Outcome::Skipped(_) => "skipped",
            Outcome::AlreadyHandled => "already_handled",
            Outcome::FlowFailed { .. } => "flow_failed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Answered { conversation_id } => write!(f, "answered (new conversation {conversation_id})"),
            Outcome::Continued { conversation_id } => write!(f, "continued conversation {conversation_id}"),
            Outcome::Notified(why) => write!(f, "answered with a notice: {why}"),
            Outcome::Skipped(why) => write!(f, "skipped, no answer: {why}"),
            Outcome::AlreadyHandled => f.write_str("skipped: already handled (same Message-ID)"),
            Outcome::FlowFailed { conversation_id } => write!(
                f,
                "flow failed (conversation {conversation_id}): the customer got the apology; the log says why"
            ),
        }
    }
}

/// A mail that could not be handled now; it stays where it is and is tried
/// again. (Mails that cannot be *answered* are not errors: see [`Outcome`].)
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("recording the mail: {0}")]
    Store(#[from] StoreError),
    #[error("running its turn: {0}")]
    Engine(#[from] EngineError),
}

#[derive(Clone)]
pub struct EmailChannel {
    engine: Engine,
    settings: Arc<Settings>,
    /// Set when `email.verify_dkim` is on.
    dkim: Option<Arc<dkim::DkimVerifier>>,
    /// Where the mails' time went (shared by the clones of this channel).
    stages: Arc<stages::Stages>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Who a mail that will be answered is from, and where the answers go.
struct Sender {
    from: EmailAddress,
    answer_to: EmailAddress,
    /// How `from` was authenticated (only when answers go to it).
    verified: Option<&'static str>,
    /// Whether `answer_to` has proven itself: authenticated, or on record.
    proven: bool,
}

impl EmailChannel {
    pub fn new(engine: Engine, settings: Arc<Settings>) -> EmailChannel {
        let dkim = settings.email.verify_dkim.then(dkim::DkimVerifier::system).and_then(|made| {
            // Failing open is safe: an unverified sender still runs every flow.
            made.map_err(|e| tracing::error!("DKIM verification is off: {e:#}")).ok().map(Arc::new)
        });
        EmailChannel { engine, settings, dkim, stages: Default::default() }
    }

    /// Busy time per stage of every mail this channel (and its clones)
    /// handled.
    pub fn stages(&self) -> &stages::Stages {
        &self.stages
    }

    /// Verifies DKIM in-process with this verifier (and its pinned records).
    pub fn with_dkim(mut self, verifier: dkim::DkimVerifier) -> EmailChannel {
        self.dkim = Some(Arc::new(verifier));
        self
    }

    /// Handles mails as they come, each on a task of its own (parsing and the
    /// flows run on every core), at most `concurrency` at a time. Each result
    /// comes back with its `tag`, in no particular order.
    pub fn handle_stream<T, S>(
        &self,
        mails: S,
        concurrency: usize,
    ) -> impl futures::Stream<Item = (T, Result<Outcome, EmailError>)> + Send + use<T, S>
    where
        T: Send + 'static,
        S: futures::Stream<Item = (T, Vec<u8>, Source)> + Send,
    {
        use futures::StreamExt as _;
        let channel = self.clone();
        mails
            .map(move |(tag, raw, source)| {
                let channel = channel.clone();
                tokio::spawn(async move { (tag, channel.handle(&raw, &source).await) })
            })
            .buffer_unordered(concurrency.max(1))
            .filter_map(|joined| async move {
                // A panic in one mail's handling is that mail's problem only:
                // it stays unhandled and is tried again.
                joined.map_err(|e| tracing::error!("handling a mail panicked: {e}")).ok()
            })
    }

    /// [`EmailChannel::handle_stream`] over a batch, collected.
    pub async fn handle_many<T: Send + 'static>(
        &self,
        mails: Vec<(T, Vec<u8>, Source)>,
        concurrency: usize,
    ) -> Vec<(T, Result<Outcome, EmailError>)> {
        use futures::StreamExt as _;
        self.handle_stream(futures::stream::iter(mails), concurrency).collect().await
    }

    /// An agent starts `flow` for a customer known by e-mail address: a new
    /// mail thread to that address, which the customer's replies continue.
    pub async fn start_for(
        &self,
        address: &EmailAddress,
        flow: &str,
        agent: &str,
    ) -> Result<crate::engine::TurnReply, EngineError> {
        let now = self.engine.clock().now_ms();
        let thread = reply::new_thread(&format!("agent:{agent}:{address}:{now}:{}", rand::random::<u64>()));
        let threading = reply::Threading::started_by_agent(&thread, address, &self.settings.mail.from);
        let mut customer = Inbound::new(CHANNEL, &thread, address, "");
        customer.reply_sink = Some(threading.sink());
        self.engine.expect_new(CHANNEL, &thread);
        self.engine.start_for_inbound(customer, flow, agent).await
    }

    /// Handles one raw RFC 5322 mail.
    pub async fn handle(&self, raw: &[u8], source: &Source) -> Result<Outcome, EmailError> {
        let outcome = self.handle_mail(raw, source).await;
        crate::metrics::get().inbound(outcome.as_ref().map_or("error", Outcome::name));
        if outcome.is_ok() {
            self.stages.finish();
        }
        outcome
    }

    async fn handle_mail(&self, raw: &[u8], source: &Source) -> Result<Outcome, EmailError> {
        let email = &self.settings.email;
        let mail = self.stages.time(Stage::Parse, || parse::parse(raw, email.max_message_bytes));
        let checks = std::time::Instant::now();
        let store = self.engine.store();
        let now = self.engine.clock().now_ms();
        if store.mail_seen(&mail.key).await? {
            return self.already_handled(source, now).await;
        }
        let record = |outcome: &str, reason: Option<&str>| {
            Write::MailReceived(MailReceived {
                message_key: mail.key.clone(),
                source: source.name(),
                sender: mail.reply_to.as_deref().unwrap_or_default().to_string(),
                subject: mail.subject.chars().take(200).collect(),
                outcome: outcome.to_string(),
                reason: reason.map(str::to_string),
            })
        };
        let skip = match safety::check(&mail, email) {
            Some(skip) => Err(skip),
            None => self.sender_of(raw, &mail).await?,
        };
        let Sender { from: sender, answer_to: reply_to, verified, proven } = match skip {
            Ok(who) => who,
            Err(skip) => {
                tracing::info!(key = %mail.key, sender = ?mail.from, reason = %skip, "mail recorded, not answered");
                store.record(&source.with_checkpoint(vec![record("skipped", Some(skip.code()))]), now).await?;
                return Ok(Outcome::Skipped(skip));
            }
        };

        // The thread: the one this mail answers, if it is this sender's;
        // otherwise a new one.
        let mut continuing = false;
        let answered_thread = match reply::thread_of(&mail) {
            Some(thread) => match store.latest_conversation(CHANNEL, &thread).await? {
                Some(row) if row.sender != *sender => None,
                Some(row) => {
                    continuing = row.status.is_open();
                    Some(thread)
                }
                None => Some(thread),
            },
            None => None,
        };
        let thread = answered_thread.unwrap_or_else(|| {
            let thread = reply::new_thread(&mail.key);
            self.engine.expect_new(CHANNEL, &thread);
            thread
        });
        let mut threading = reply::Threading::for_mail(&mail, &thread, &reply_to, &self.settings.mail.from);
        if !proven {
            // An address that has not proven itself may not be the writer's:
            // never carry the writer's words to it.
            threading = threading.neutral();
        }

        if mail.oversized {
            let notice = threading.notice(&mail.key, &self.settings.messages.mail_too_large);
            store.record(&source.with_checkpoint(vec![record("answered", Some("too_large")), notice]), now).await?;
            return Ok(Outcome::Notified("the mail was too large to read"));
        }

        let text = if continuing {
            quotes::answer(&mail.text)
        } else {
            let subject = quotes::clean_subject(&mail.subject);
            [subject.as_str(), mail.text.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut inbound = Inbound::new(CHANNEL, &thread, &sender, text);
        inbound.external_id = Some(mail.key.clone());
        inbound.verified = verified.map(str::to_string);
        inbound.writes = source.with_checkpoint(vec![record(if continuing { "continued" } else { "answered" }, None)]);
        inbound.reply_sink = Some(timed_sink(threading.sink(), self.stages.clone()));
        self.stages.add(Stage::Checks, checks.elapsed());
        let reply = self.stages.time_async(Stage::Turn, self.engine.handle(inbound)).await?;
        if let (Some(conversation_id), Some(Status::Failed), false) =
            (reply.conversation_id, reply.status, reply.duplicate)
        {
            return Ok(Outcome::FlowFailed { conversation_id });
        }
        match reply.conversation_id {
            Some(conversation_id) if !reply.duplicate && continuing => Ok(Outcome::Continued { conversation_id }),
            Some(conversation_id) if !reply.duplicate => Ok(Outcome::Answered { conversation_id }),
            // Another copy of the mail committed first.
            _ => self.already_handled(source, now).await,
        }
    }

    /// Who the mail is from and where answers go, how (if at all) the
    /// sender is verified, and whether that address has proven itself;
    /// or why it gets no answer: the daily caps, taken here once per mail
    /// (atomically, so mails handled at the same time, here or on another
    /// instance, cannot together pass a cap).
    async fn sender_of(&self, raw: &[u8], mail: &parse::ParsedMail) -> Result<Result<Sender, Skip>, StoreError> {
        let email = &self.settings.email;
        let (Some(sender), Some(reply_to)) = (mail.from.clone(), mail.reply_to.clone()) else {
            return Ok(Err(Skip::NoSender));
        };
        // Authentication speaks for From only: with answers aimed elsewhere
        // (Reply-To), it proves nothing about where they go.
        let mut verified = None;
        if crate::mail::limit_key(&sender) == crate::mail::limit_key(&reply_to) {
            verified = auth::verified_by(&mail.authentication_results, email.trusted_authserv_id.as_deref(), &sender);
            if let (None, Some(dkim)) = (verified, &self.dkim) {
                if dkim.verifies(raw, sender.domain()).await {
                    verified = Some("dkim");
                }
            }
        }
        let store = self.engine.store();
        let proven = match verified {
            Some(_) => true,
            None => crate::directory::Directory::new(store.clone()).contact_by_email(&reply_to).await?.is_some(),
        };
        let day = |count| crate::config::Limit { count, period: std::time::Duration::from_millis(DAY_MS as u64) };
        let mut quotas = vec![Quota::new(
            format!("answers:to:{}", crate::mail::limit_key(&reply_to)),
            day(email.answers_per_sender_per_day),
        )];
        if !proven {
            quotas.push(Quota::new(
                format!("answers:domain:{}", crate::mail::address_domain(&reply_to)),
                day(email.answers_per_unproven_domain_per_day),
            ));
            quotas.push(Quota::new("answers:unproven", day(email.answers_to_unproven_per_day)));
        }
        let now = self.engine.clock().now_ms();
        let taken = store.take_quota(&format!("mail:{}", mail.key), &quotas, now).await?;
        if let Taken::Refused { quota, .. } = &taken {
            crate::metrics::get().refused(quota);
        }
        Ok(match taken {
            Taken::Granted => Ok(Sender { from: sender, answer_to: reply_to, verified, proven }),
            Taken::Refused { quota, .. } if quota.starts_with("answers:domain:") => Err(Skip::DomainCap),
            Taken::Refused { quota, .. } if quota == "answers:unproven" => Err(Skip::UnprovenCap),
            Taken::Refused { .. } => Err(Skip::DailyCap),
        })
    }

    /// A mail handled before: nothing to do but move the checkpoint past it.
    async fn already_handled(&self, source: &Source, now: i64) -> Result<Outcome, EmailError> {
        if let Some(checkpoint) = source.checkpoint() {
            self.engine.store().record(&[checkpoint], now).await?;
        }
        Ok(Outcome::AlreadyHandled)
    }
}

/// `sink`, its time added to [`Stage::Answer`].
fn timed_sink(sink: ReplySink, stages: Arc<stages::Stages>) -> ReplySink {
    ReplySink(Arc::new(move |replies| stages.time(Stage::Answer, || (sink.0)(replies))))
}
