//! What `GET /metrics` tells Prometheus: counters the work updates as it
//! goes (turns, mails, limits, screening), gauges set when they change (the
//! leads this instance holds) or when scraped (conversations by status).
//!
//! One registry for the process, as a Prometheus client library keeps: the
//! code that counts (the engine, the outbox, the e-mail channel, the account
//! effects) needs no handle passed down to it. Labels never carry personal
//! data: flow, channel and outcome names, limit kinds, statuses.

use std::sync::LazyLock;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TurnLabels {
    pub flow: String,
    pub channel: String,
    /// The conversation's status after the turn (`waiting`, `done`,
    /// `failed`, …), or `duplicate` / `error`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeadLabel {
    pub lead: String,
}

pub struct Metrics {
    pub turns: Family<TurnLabels, Counter>,
    pub turn_duration: Histogram,
    pub conversations: Family<StatusLabel, Gauge>,
    pub mail_outbox: Family<StatusLabel, Counter>,
    pub inbound_mail: Family<OutcomeLabel, Counter>,
    pub limit_refusals: Family<LimitLabel, Counter>,
    pub screening: Family<OutcomeLabel, Counter>,
    pub leader: Family<LeadLabel, Gauge>,
    registry: Registry,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        turns: Family::default(),
        // 0.5 ms to about 16 s.
        turn_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        conversations: Family::default(),
        mail_outbox: Family::default(),
        inbound_mail: Family::default(),
        limit_refusals: Family::default(),
        screening: Family::default(),
        leader: Family::default(),
        registry: Registry::default(),
    };
    let mut registry = Registry::default();
    // Counters are written with `_total` after the name.
    registry.register("frontdesk_turns", "Turns run, by flow, channel and outcome", m.turns.clone());
    registry.register(
        "frontdesk_turn_duration_seconds",
        "How long a turn took, from the message to its commit",
        m.turn_duration.clone(),
    );
    registry.register("frontdesk_conversations", "Conversations by status", m.conversations.clone());
    registry.register("frontdesk_mail_outbox", "Outbox deliveries by result", m.mail_outbox.clone());
    registry.register("frontdesk_inbound_mail", "Support mails handled, by outcome", m.inbound_mail.clone());
    registry.register("frontdesk_limit_refusals", "Requests refused by a rate limit or cap", m.limit_refusals.clone());
    registry.register("frontdesk_screening", "Trade-embargo screening decisions", m.screening.clone());
    registry.register("frontdesk_leader", "1 where this instance leads the work", m.leader.clone());
    // Series that exist from the start, at zero, so a dashboard or an
    // alert on a rate sees them before the first event.
    for status in ["sent", "failed", "retry"] {
        m.outbox_series(status);
    }
    for outcome in ["answered", "continued", "notified", "skipped", "already_handled", "flow_failed", "error"] {
        m.inbound_mail.get_or_create_owned(&OutcomeLabel { outcome: outcome.to_string() });
    }
    for outcome in ["passed", "review", "refused"] {
        m.screening.get_or_create_owned(&OutcomeLabel { outcome: outcome.to_string() });
    }
    for limit in [
        "search:who",
        "search:what",
        "login_info:contact",
        "email_code:to",
        "email_code:who",
        "create:who",
        "create:all",
        "answers:to",
        "answers:domain",
        "answers:unproven",
    ] {
        m.limit_refusals.get_or_create_owned(&LimitLabel { limit: limit.to_string() });
    }
    Metrics { registry, ..m }
});

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    pub fn turn(&self, flow: &str, channel: &str, outcome: &str, seconds: f64) {
        let labels = TurnLabels { flow: flow.to_string(), channel: channel.to_string(), outcome: outcome.to_string() };
        self.turns.get_or_create(&labels).inc();
        self.turn_duration.observe(seconds);
    }

    pub fn outbox(&self, status: &str) {
        self.outbox_series(status).inc();
    }

    fn outbox_series(&self, status: &str) -> Counter {
        self.mail_outbox.get_or_create_owned(&StatusLabel { status: status.to_string() })
    }

    pub fn inbound(&self, outcome: &str) {
        self.inbound_mail.get_or_create(&OutcomeLabel { outcome: outcome.to_string() }).inc();
    }

    /// A refusal by the limit whose quota key starts with `kind` (the part
    /// before the first `:`; never the identity or identifier after it).
    pub fn refused(&self, quota: &str) {
        let kind = quota.split(':').take(2).collect::<Vec<_>>().join(":");
        self.limit_refusals.get_or_create(&LimitLabel { limit: kind }).inc();
    }

    pub fn screened(&self, outcome: &str) {
        self.screening.get_or_create(&OutcomeLabel { outcome: outcome.to_string() }).inc();
    }

    pub fn leads(&self, lead: &str, leading: bool) {
        self.leader.get_or_create(&LeadLabel { lead: lead.to_string() }).set(i64::from(leading));
    }

    /// Sets the conversations gauge to these counts (statuses not named
    /// drop to zero).
    pub fn set_conversations(&self, counts: &[(String, i64)]) {
        for status in ["waiting", "scheduled", "done", "failed", "handed_off"] {
            let n = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            self.conversations.get_or_create(&StatusLabel { status: status.to_string() }).set(n);
        }
    }

    /// The OpenMetrics text Prometheus scrapes.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_are_labelled_by_kind_never_by_who() {
        let m = super::get();
        m.refused("search:who:discord:7001");
        m.refused("answers:domain:victim.example");
        let text = m.encode();
        assert!(text.contains(r#"frontdesk_limit_refusals_total{limit="search:who"}"#), "{text}");
        assert!(!text.contains("7001") && !text.contains("victim"), "{text}");
    }
}
