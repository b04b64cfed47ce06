//! What the chat channels (Discord, Slack) share about their members: one
//! lock per member, sending replies under a claim, and the replies owed to
//! them that a sweep redelivers.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::OwnedMutexGuard;

use crate::{
    engine::{Delivery, Engine, EngineError},
    store::{Result, Store},
};

/// One lock per member: their turns and the sends that follow do not
/// interleave, so messages arrive in order and nothing is sent twice.
pub struct MemberLocks<K> {
    locks: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K> Default for MemberLocks<K> {
    fn default() -> Self {
        MemberLocks { locks: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq> MemberLocks<K> {
    /// Waits for `member`'s lock. Locks nobody holds or waits for are
    /// dropped once there are many, so the map does not grow with every
    /// member ever seen.
    pub async fn lock(&self, member: K) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().expect("member locks");
            if locks.len() > 10_000 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(member).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// How long a claim on replies being sent holds: well past the time a
/// turn's replies take to send with every retry (a few calls of up to
/// `request_timeout` each). A sender that dies mid-send blocks its replies
/// this long; then the sweep sends them.
pub const SEND_LEASE: Duration = Duration::from_secs(300);

/// Sends `deliveries` with `send`, one by one, as far as this instance
/// claims them ([`Engine::claim`]: the member lock only serialises this
/// process; another instance may be sending the same replies), marking each
/// delivered once sent. When a send fails, the claims on the rest are given
/// back, so the member's next turn sends them. Returns how many were sent.
pub async fn send_claimed<E, F, Fut>(
    engine: &Engine,
    deliveries: &[Delivery],
    mut send: F,
) -> std::result::Result<usize, E>
where
    E: From<EngineError>,
    F: FnMut(Delivery) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
{
    let claimed = engine.claim(deliveries, SEND_LEASE).await?;
    for (i, d) in claimed.iter().enumerate() {
        if let Err(e) = send(d.clone()).await {
            if let Err(unclaim) = engine.unclaim(&claimed[i..]).await {
                tracing::warn!("unsent replies keep their claim until it lapses: {unclaim}");
            }
            return Err(e);
        }
        engine.delivered(std::slice::from_ref(d)).await?;
    }
    Ok(claimed.len())
}

/// Replies older than this are left alone by the sweep (a member who
/// closed their DMs for good).
const GIVE_UP: Duration = Duration::from_secs(24 * 3600);

/// What `channel` still owes its members at `now_ms`: replies undelivered
/// for longer than `after` (younger ones may be on their way) but less than
/// a day, as each member's conversation key with the conversations that owe
/// them something (at most 200 replies a round).
pub async fn owed(store: &Store, channel: &str, now_ms: i64, after: Duration) -> Result<BTreeMap<String, Vec<i64>>> {
    let (since, before) = (now_ms - GIVE_UP.as_millis() as i64, now_ms - after.as_millis() as i64);
    let rows = store.undelivered_on(channel, since, before, 200).await?;
    let mut owed: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in rows {
        let conversations = owed.entry(r.conv_key).or_default();
        if !conversations.contains(&r.conversation_id) {
            conversations.push(r.conversation_id);
        }
    }
    Ok(owed)
}
