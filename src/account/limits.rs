//! Rate limits on the account effects, as quotas of the store: checked and
//! counted in one serialised step ([`Store::take_quota`]), so concurrent
//! turns and instances together never exceed them, and durable across
//! restarts.

use std::time::Duration;

use crate::{
    config::Settings,
    engine::{EffectCall, EffectError},
    store::{Quota, Store, Taken},
};

/// Who is asking, as quotas count them: the channel and the sender, with an
/// e-mail address reduced to its mailbox (`ann+1@x` and `Ann@x` are one).
pub(crate) fn identity(call: &EffectCall) -> String {
    format!("{}:{}", call.context.channel, crate::mail::limit_key(&call.context.sender))
}

/// The quotas of one search (or of anything that reveals as much as a
/// search: a duplicate check, a contact request, the verified-sender
/// shortcut): per identity, and per identifier asked about.
pub(crate) fn search(s: &Settings, identity: &str, identifier: &str) -> Vec<Quota> {
    vec![
        Quota::new(format!("search:who:{identity}"), s.limits.searches_per_identity),
        Quota::new(format!("search:what:{identifier}"), s.limits.searches_per_identifier),
    ]
}

/// Takes one use of each of `quotas` for this effect; `Some(wait)` when one
/// is used up (nothing is counted then).
pub(crate) async fn take(store: &Store, call: &EffectCall, quotas: &[Quota]) -> Result<Option<Duration>, EffectError> {
    let taken = store.take_quota(&call.context.hold, quotas, call.context.now_ms).await;
    match taken.map_err(EffectError::retry)? {
        Taken::Granted => Ok(None),
        Taken::Refused { quota, wait_ms } => {
            crate::metrics::get().refused(&quota);
            Ok(Some(Duration::from_millis(wait_ms.max(0) as u64)))
        }
    }
}

/// Minutes to tell a customer, rounded up.
pub(crate) fn minutes(wait: Duration) -> u64 {
    wait.as_secs().div_ceil(60).max(1)
}

/// The longest any quota looks back (the e-mail caps count a day): uses
/// older than that can go.
pub fn longest_period(s: &Settings) -> Duration {
    let l = &s.limits;
    [
        l.searches_per_identity,
        l.searches_per_identifier,
        l.recovery_mails_per_contact,
        l.email_codes_per_address,
        l.email_codes_per_identity,
        l.creations_per_identity,
        l.creations,
    ]
    .iter()
    .map(|l| l.period)
    .chain(std::iter::once(Duration::from_secs(86_400)))
    .max()
    .unwrap_or_default()
}

/// Forgets quota uses no limit looks back to; returns how many went.
pub async fn prune(store: &Store, s: &Settings, now: i64) -> Result<u64, crate::store::StoreError> {
    store.prune_quota_uses(now - longest_period(s).as_millis() as i64).await
}
