//! The recovery workload of `frontdesk bench engine --workload recovery`:
//! what customers actually do. Each simulated customer runs the whole login
//! recovery over and over (router → find_company → contact_list →
//! recover_login → more_help), searching by each search kind in turn over a
//! synthetic directory: a lookup and its rate-limit quotas, the contact
//! list, a reset token, an audit row and a mail in the outbox per recovery.
//!
//! Its floor does the same store work without the engine: per step of a
//! recovery, the conversation's commit (rows of the engine's shape), and the
//! same reads and writes the effects do (quota takes, the search, the
//! contact list, the contact and company, the token, the mail, the audits).

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde_json::json;

use super::engine::{Customer, Shape};
use crate::{
    engine::{Outbound, TurnReply},
    store::{
        directory::CompanyKey, outbox::NewMail, requests::NewRecoveryToken, Audit, ConversationRow, ConversationWrite,
        Direction, NewMessage, Quota, Status, Store, TurnCommit, Write,
    },
};

/// The search kinds, in the order of find_company's menu.
const KINDS: [&str; 5] = ["username", "email", "contract", "serial", "machine_code"];

/// What the customers search by, sampled over the whole directory.
#[derive(Default)]
pub struct Identifiers {
    usernames: Vec<String>,
    emails: Vec<String>,
    /// (contract number, the administrator's last name).
    contracts: Vec<(String, String)>,
    serials: Vec<String>,
    machine_codes: Vec<String>,
}

impl Identifiers {
    /// Up to `want` of each kind, spread over the files in `dir`. The files
    /// are streamed twice (once to count, once to pick), never held: at a
    /// million companies they are hundreds of MB.
    pub fn sample(dir: &Path, want: usize) -> anyhow::Result<Identifiers> {
        let each = |name: &str, f: &mut dyn FnMut(usize, &csv::StringRecord)| -> anyhow::Result<usize> {
            let mut r = csv::Reader::from_path(dir.join(name))?;
            let mut record = csv::StringRecord::new();
            let mut n = 0;
            while r.read_record(&mut record)? {
                f(n, &record);
                n += 1;
            }
            Ok(n)
        };
        let count = |name: &str| each(name, &mut |_, _| ());
        // Every `every`-th row, up to `want` of them.
        let every = |n: usize| (n / want.max(1)).max(1);
        let picked = |i: usize, every: usize| i.is_multiple_of(every) && i / every < want;
        let mut ids = Identifiers::default();

        // Contracts name their administrator by user name; the last names
        // come from the contacts' pass below.
        let step = every(count("contracts.csv")?);
        let mut admins: std::collections::HashMap<String, Vec<usize>> = Default::default();
        let mut contracts = Vec::new();
        each("contracts.csv", &mut |i, k| {
            if picked(i, step) {
                admins.entry(k[2].to_string()).or_default().push(contracts.len());
                contracts.push((k[0].to_string(), None::<String>));
            }
        })?;
        let step = every(count("contacts.csv")?);
        each("contacts.csv", &mut |i, c| {
            if picked(i, step) {
                ids.usernames.push(c[1].to_string());
                ids.emails.push(c[4].to_string());
            }
            if let Some(at) = admins.get(&c[1]) {
                for &k in at {
                    contracts[k].1 = Some(c[3].to_string());
                }
            }
        })?;
        ids.contracts = contracts.into_iter().filter_map(|(number, last)| Some((number, last?))).collect();

        let (mut xp, mut other) = (0, 0);
        each("licenses.csv", &mut |_, l| if &l[2] == "XP" { xp += 1 } else { other += 1 })?;
        let (xp_step, other_step) = (every(xp), every(other));
        let (mut xp_i, mut other_i) = (0, 0);
        each("licenses.csv", &mut |_, l| {
            if &l[2] == "XP" {
                if picked(xp_i, xp_step) {
                    ids.machine_codes.push(l[3].to_string());
                }
                xp_i += 1;
            } else {
                if picked(other_i, other_step) {
                    ids.serials.push(l[0].to_string());
                }
                other_i += 1;
            }
        })?;
        anyhow::ensure!(
            [ids.usernames.len(), ids.contracts.len(), ids.serials.len(), ids.machine_codes.len()]
                .iter()
                .all(|n| *n > 0),
            "the synthetic directory lacks a search kind"
        );
        Ok(ids)
    }
}

/// A customer recovering their login again and again, by the next search
/// kind each time.
pub struct Recovering {
    ids: Arc<Identifiers>,
    who: usize,
    round: usize,
    /// Recoveries that reached the login mail.
    pub recovered: Arc<AtomicU64>,
}

impl Recovering {
    pub fn new(ids: Arc<Identifiers>, who: usize, recovered: Arc<AtomicU64>) -> Recovering {
        Recovering { ids, who, round: who, recovered }
    }

    fn pick<'a, T>(&self, from: &'a [T]) -> &'a T {
        &from[(self.who * 7919 + self.round * 104_729) % from.len()]
    }

    fn kind(&self) -> usize {
        self.round % KINDS.len()
    }
}

impl Customer for Recovering {
    fn first(&mut self) -> String {
        "I forgot my password".into()
    }

    fn next(&mut self, reply: &TurnReply) -> anyhow::Result<String> {
        if reply.status.is_some_and(|s| !s.is_open()) {
            self.round += 1;
            return Ok(self.first());
        }
        let said = |needle: &str| {
            reply.messages.iter().any(|d| match &d.message {
                Outbound::Text { text, .. } | Outbound::Prompt { text, .. } => text.contains(needle),
                Outbound::Handoff { .. } => false,
            })
        };
        if said("is on its way") {
            self.recovered.fetch_add(1, Ordering::Relaxed);
        }
        let prompt = reply.messages.iter().rev().find_map(|d| match &d.message {
            Outbound::Prompt { text, .. } => Some(text.as_str()),
            _ => None,
        });
        let ids = self.ids.clone();
        Ok(match prompt {
            Some(p) if p.contains("How would you like to find") => (self.kind() + 1).to_string(),
            Some(p) if p.contains("user name") => self.pick(&ids.usernames).clone(),
            Some(p) if p.contains("e-mail address") => self.pick(&ids.emails).clone(),
            Some(p) if p.contains("sales contract number") => self.pick(&ids.contracts).0.clone(),
            Some(p) if p.contains("last name") => self.pick(&ids.contracts).1.clone(),
            Some(p) if p.contains("serial number") => self.pick(&ids.serials).clone(),
            Some(p) if p.contains("machine code") => self.pick(&ids.machine_codes).clone(),
            Some(p) if p.contains("pick your name") => "1".into(),
            Some(p) if p.contains("Still need assistance") => "1".into(),
            other => anyhow::bail!("the recovery took a turn the bench does not expect: {other:?} ({reply:?})"),
        })
    }
}

/// The floor: per recovery, the store work of its steps without the
/// engine. Returns steps/s (comparable to turns/s).
pub async fn floor(
    store: &Store,
    channel: &str,
    ids: Arc<Identifiers>,
    n: usize,
    shape: Shape,
    duration: Duration,
) -> anyhow::Result<f64> {
    let steps = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (store, steps, stop, ids, channel) =
            (store.clone(), steps.clone(), stop.clone(), ids.clone(), channel.to_string());
        tasks.push(tokio::spawn(async move {
            let mut round = i;
            while !stop.load(Ordering::Relaxed) {
                match recovery(&store, &channel, &ids, i, round, shape).await {
                    Ok(done) => steps.fetch_add(done, Ordering::Relaxed),
                    Err(e) => {
                        tracing::error!("floor recovery failed: {e:#}");
                        return;
                    }
                };
                round += 1;
            }
        }));
    }
    super::engine::per_second(duration, start, &stop, &steps, tasks).await
}

/// One conversation step: the conversation row and its transcript rows
/// committed with `writes`, and the answers acknowledged.
struct Step<'a> {
    store: &'a Store,
    row: ConversationRow,
    shape: Shape,
    first: bool,
}

impl Step<'_> {
    async fn commit(&mut self, writes: Vec<Write>, last: bool) -> anyhow::Result<()> {
        let now = super::engine::clock_ms();
        let status_before = self.row.status;
        self.row.status = if last { Status::Done } else { Status::Waiting };
        let mut messages = Vec::new();
        let mut acks = Vec::new();
        for k in 0..super::engine::whole(self.shape.messages_per_turn).max(2) {
            messages.push(NewMessage {
                seq: self.row.next_seq,
                direction: if k > 0 { Direction::Out } else { Direction::In },
                external_id: None,
                body: "m".repeat(self.shape.message_bytes),
                created_at: now,
                delivered_at: None,
            });
            if k > 0 {
                acks.push((self.row.id, self.row.next_seq));
            }
            self.row.next_seq += 1;
        }
        let conversation = if self.first {
            ConversationWrite::Insert(self.row.clone())
        } else {
            ConversationWrite::Update {
                row: self.row.clone(),
                expected_version: self.row.version - 1,
                expected_status: status_before,
            }
        };
        self.first = false;
        self.store.commit(TurnCommit { conversation, messages, writes }).await?;
        self.store.ack_delivered(acks, now).await?;
        self.row.version += 1;
        Ok(())
    }
}

fn audit(who: &str, action: &str, subject: &str) -> Write {
    Write::Audit(Audit {
        channel: "bench".into(),
        actor: who.into(),
        by_agent: None,
        action: action.into(),
        subject: subject.into(),
        detail: json!({}),
    })
}

/// Returns how many steps the recovery took.
async fn recovery(
    store: &Store,
    channel: &str,
    ids: &Identifiers,
    who: usize,
    round: usize,
    shape: Shape,
) -> anyhow::Result<u64> {
    let now = super::engine::clock_ms();
    let me = format!("floor{who}");
    let unlimited = Quota { key: String::new(), count: i64::MAX, period_ms: 3_600_000 };
    let quota = |key: String| Quota { key, ..unlimited.clone() };
    let mut step = Step {
        store,
        row: shape.row(channel, &me, "find_company", crate::store::new_conversation_id(now), now),
        shape,
        first: true,
    };
    let pick = |len: usize| (who * 7919 + round * 104_729) % len;
    let kind = KINDS[round % KINDS.len()];
    // The first message and the search kind.
    step.commit(Vec::new(), false).await?;
    step.commit(Vec::new(), false).await?;
    let mut steps = 2;
    let (key, searched) = match kind {
        "username" => (ids.usernames[pick(ids.usernames.len())].to_lowercase(), 0),
        "email" => (ids.emails[pick(ids.emails.len())].to_lowercase(), 1),
        "contract" => {
            step.commit(Vec::new(), false).await?;
            steps += 1;
            (crate::store::keys::code(&ids.contracts[pick(ids.contracts.len())].0), 2)
        }
        "serial" => (crate::store::keys::code(&ids.serials[pick(ids.serials.len())]), 3),
        _ => (crate::store::keys::code(&ids.machine_codes[pick(ids.machine_codes.len())]), 4),
    };
    // The search: its quotas, the lookup, the contact list.
    let hold = format!("{me}:{round}:search");
    store.take_quota(&hold, &[quota(format!("search:who:{me}")), quota(format!("search:what:{key}"))], now).await?;
    let last_name = crate::store::keys::name(&ids.contracts[pick(ids.contracts.len())].1);
    let company = match searched {
        0 => store.company_by(CompanyKey::Username(&key)).await?,
        1 => store.company_by(CompanyKey::Email(&key)).await?,
        2 => store.company_by(CompanyKey::Contract(&key, &last_name)).await?,
        3 => store.company_by(CompanyKey::Serial(&key)).await?,
        _ => store.company_by(CompanyKey::MachineCode(&key, crate::directory::LEGACY_PRODUCT)).await?,
    };
    let company = company.ok_or_else(|| anyhow::anyhow!("the floor's {kind} {key} was not found"))?;
    let contacts = store.contacts(&company.org_id).await?;
    let contact = contacts.first().ok_or_else(|| anyhow::anyhow!("{} has no contact", company.org_id))?.clone();
    step.commit(vec![audit(&me, "search", &key), audit(&me, "contact_list_shown", &company.org_id)], false).await?;
    // The pick: the mail's quota, the contact and company, token, mail, audit.
    store
        .take_quota(&format!("{me}:{round}:mail"), &[quota(format!("login_info:contact:{}", contact.id))], now)
        .await?;
    let (contact, company) =
        store.contact_and_company(contact.id).await?.ok_or_else(|| anyhow::anyhow!("the contact went"))?;
    let (_, token_hash) = crate::account::tokens::new();
    let mail = NewMail {
        message_id: crate::mail::new_message_id("bench@frontdesk.example"),
        template: "login_info".into(),
        to: contact.email.clone(),
        context: json!({ "first_name": contact.first_name, "username": contact.username, "company": company,
                         "reset_url": "https://x.example/r", "expires_minutes": 30 }),
    };
    let writes = vec![
        Write::RecoveryToken(NewRecoveryToken { token_hash, contact_id: contact.id, expires_at: now + 1_800_000 }),
        Write::Mail(mail),
        audit(&me, "login_info_sent", &format!("contact:{}", contact.id)),
    ];
    step.commit(writes, false).await?;
    // "Still need assistance?" → no.
    step.commit(Vec::new(), true).await?;
    Ok(steps + 3)
}
