//! Rate limits and caps, checked and counted in one serialised step.
//!
//! Why not count audit rows: they are written when a turn commits, so turns
//! running at the same moment all saw the old count, and ten concurrent
//! "pick your name" turns sent ten login mails to one contact under a limit
//! of three. Here a use is taken *before* the thing it limits happens, by the
//! store's writer ([`super::writer`]): one task per instance, so takes on one
//! instance never interleave, batched into the writer's transaction, so a
//! take costs a few statements rather than a transaction of its own (a take
//! per inbound mail in its own `BEGIN IMMEDIATE` cut the e-mail bench from
//! 8,000 to 727 mails/s). Across instances on PostgreSQL the writer takes a
//! transaction-scoped advisory lock per quota first.
//!
//! A use is taken under a *hold* key (one effect in one state of its
//! conversation), once per quota: taking a quota again under the same hold
//! grants without counting, so a turn that fails after taking (and is tried
//! again with the same state) does not pay twice, while one effect that takes
//! several quotas in turn pays each. A turn that never commits
//! keeps its use: limits err on the side of refusing. Uses are counted in
//! buckets of a sixtieth of the period, so a check reads at most ~61 rows.

use super::{
    exec::Conn,
    sql::{pow2_chunks, Sql},
    Result, Store, StoreError,
};

/// At most `count` uses of `key` in any `period_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub key: String,
    pub count: i64,
    pub period_ms: i64,
}

impl Quota {
    pub fn new(key: impl Into<String>, limit: crate::config::Limit) -> Quota {
        Quota { key: key.into(), count: limit.count, period_ms: limit.period.as_millis() as i64 }
    }
}

/// What came of taking a use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Counted (or counted before under the same hold).
    Granted,
    /// `quota` is used up until `wait_ms` from now; nothing was counted.
    Refused { quota: String, wait_ms: i64 },
}

/// One take, as the writer gets it.
#[derive(Debug, Clone)]
pub(crate) struct Take {
    pub hold: String,
    pub quotas: Vec<Quota>,
    pub now: i64,
}

impl Take {
    /// Its quota keys, to lock in one order everywhere (no deadlock between
    /// instances taking overlapping sets).
    pub fn keys(takes: &[Take]) -> Vec<&str> {
        let mut keys: Vec<&str> = takes.iter().flat_map(|t| t.quotas.iter().map(|q| q.key.as_str())).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// Serialises takers of `keys` across PostgreSQL instances until the
/// transaction ends: a transaction-scoped advisory lock per quota, taken in
/// the order of `keys` (sorted, so two instances taking overlapping sets do
/// not deadlock), many per statement: a statement per lock was a round trip
/// per quota key for the PostgreSQL writer.
pub(crate) async fn lock(conn: &mut impl Conn, keys: &[&str]) -> Result<()> {
    for chunk in pow2_chunks(keys, ROWS) {
        // The aggregate takes the locks as the ordered subquery yields them.
        let mut q = Sql::new(
            conn,
            "SELECT COUNT(pg_advisory_xact_lock(hashtextextended(s.k, 0))) FROM \
             (SELECT v.column1 AS k FROM (VALUES ",
        );
        q.rows(chunk.iter().enumerate(), |v, (i, key)| {
            v.bind(*key).bind(i as i64);
        });
        q.push(") AS v ORDER BY v.column2) AS s");
        conn.run(q).await?;
    }
    Ok(())
}

/// Most tries of a take that lost to a concurrent writer.
const TAKE_ATTEMPTS: usize = 5;

impl Store {
    /// Takes one use of every quota in `quotas`, or of none when any is used
    /// up. Atomic against every other taker, on this instance or another.
    pub async fn take_quota(&self, hold: &str, quotas: &[Quota], now_ms: i64) -> Result<Taken> {
        if quotas.is_empty() {
            return Ok(Taken::Granted);
        }
        let take = Take { hold: hold.to_string(), quotas: quotas.to_vec(), now: now_ms };
        let mut attempt = 0;
        loop {
            match self.writer.take(take.clone()).await {
                Err(StoreError::Contention) if attempt + 1 < TAKE_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    /// Uses of `key` counted in buckets that end after `since_ms` (for tests
    /// and operators).
    pub async fn quota_used(&self, key: &str, since_ms: i64) -> Result<i64> {
        const SQL: &str =
            "SELECT CAST(COALESCE(SUM(uses), 0) AS BIGINT) FROM quota_counts WHERE quota = $1 AND bucket >= $2";
        let (n,): (i64,) = sqlx::query_as(SQL).bind(key).bind(since_ms).fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Forgets uses and holds older than `before_ms` (no quota looks back
    /// that far); returns how many buckets went.
    pub async fn prune_quota_uses(&self, before_ms: i64) -> Result<u64> {
        sqlx::query("DELETE FROM quota_holds WHERE at < $1").bind(before_ms).execute(&self.pool).await?;
        let gone =
            sqlx::query("DELETE FROM quota_counts WHERE bucket < $1").bind(before_ms).execute(&self.pool).await?;
        Ok(gone.rows_affected())
    }
}

/// The length of a quota's buckets.
fn bucket_ms(q: &Quota) -> i64 {
    (q.period_ms / 60).max(1000)
}

/// Rows per multi-row statement (3 values each), a power of two: chunks
/// of a few fixed sizes stay prepared ([`pow2_chunks`]), where a statement
/// of every batch's own length would be parsed again each batch.
const ROWS: usize = 512;

/// The takes of one writer batch, once their quotas are locked: decided in
/// order, in memory, from one read of the holds and one of the buckets, and
/// written back in two multi-row statements, so a batch of takes costs four
/// round trips however many it holds (a statement per take made the writer
/// the bottleneck of the e-mail channel).
pub(crate) async fn take_batch(conn: &mut impl Conn, takes: &[Take]) -> Result<Vec<Taken>> {
    use std::collections::{BTreeMap, HashMap, HashSet};
    if takes.is_empty() {
        return Ok(Vec::new());
    }
    // 1. Which of their quotas each hold has taken before (a hold is one
    //    effect, which may take several quotas in turn).
    let mut holds: Vec<&str> = takes.iter().map(|t| t.hold.as_str()).collect();
    holds.sort_unstable();
    holds.dedup();
    let mut held: HashSet<(String, String)> = HashSet::new();
    for chunk in pow2_chunks(&holds, ROWS) {
        let mut q = Sql::new(conn, "SELECT hold, quota FROM quota_holds WHERE hold IN (");
        q.list(chunk.iter().copied()).push(")");
        held.extend(conn.rows::<(String, String)>(q).await?);
    }
    // 2. The buckets of every quota in the batch that reach into a window.
    let since =
        takes.iter().flat_map(|t| t.quotas.iter().map(move |q| t.now - q.period_ms - bucket_ms(q))).min().unwrap_or(0);
    let mut buckets: HashMap<String, BTreeMap<i64, i64>> = HashMap::new();
    for chunk in pow2_chunks(&Take::keys(takes), ROWS) {
        let mut q = Sql::new(conn, "SELECT quota, bucket, uses FROM quota_counts WHERE bucket > ");
        q.bind(since).push(" AND quota IN (").list(chunk.iter().copied()).push(")");
        for (quota, bucket, uses) in conn.rows::<(String, i64, i64)>(q).await? {
            buckets.entry(quota).or_default().insert(bucket, uses);
        }
    }
    // 3. Each take in turn, on the counts as the takes before it left them.
    let mut taken = Vec::with_capacity(takes.len());
    let mut added: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    let mut new_holds: Vec<(&str, &str, i64)> = Vec::new();
    for t in takes {
        // What this hold took before (a turn run again) is no new use.
        let fresh: Vec<&Quota> = t.quotas.iter().filter(|q| !held.contains(&(t.hold.clone(), q.key.clone()))).collect();
        let refused = fresh.iter().find_map(|q| {
            let size = bucket_ms(q);
            // Every bucket that reaches into the window counts whole.
            let window = buckets.get(&q.key).map(|b| b.range(t.now - q.period_ms - size + 1..));
            let (used, oldest) = window
                .into_iter()
                .flatten()
                .fold((0, None), |(n, oldest), (bucket, uses)| (n + uses, oldest.or(Some(*bucket))));
            (used >= q.count).then(|| Taken::Refused {
                quota: q.key.clone(),
                wait_ms: (oldest.unwrap_or(t.now) + size + q.period_ms - t.now).max(1000),
            })
        });
        if let Some(refused) = refused {
            taken.push(refused);
            continue;
        }
        for q in fresh {
            let bucket = t.now - t.now.rem_euclid(bucket_ms(q));
            *buckets.entry(q.key.clone()).or_default().entry(bucket).or_default() += 1;
            *added.entry((q.key.as_str(), bucket)).or_default() += 1;
            new_holds.push((t.hold.as_str(), q.key.as_str(), t.now));
            held.insert((t.hold.clone(), q.key.clone()));
        }
        taken.push(Taken::Granted);
    }
    // 4. The new uses and holds.
    let added: Vec<((&str, i64), i64)> = added.into_iter().collect();
    for chunk in pow2_chunks(&added, ROWS) {
        let mut q = Sql::new(conn, "INSERT INTO quota_counts (quota, bucket, uses) VALUES ");
        q.rows(chunk, |v, ((quota, bucket), uses)| {
            v.bind(*quota).bind(*bucket).bind(*uses);
        });
        q.push(" ON CONFLICT (quota, bucket) DO UPDATE SET uses = quota_counts.uses + excluded.uses");
        conn.run(q).await?;
    }
    for chunk in pow2_chunks(&new_holds, ROWS) {
        let mut q = Sql::new(conn, "INSERT INTO quota_holds (hold, quota, at) VALUES ");
        q.rows(chunk, |v, (hold, quota, at)| {
            v.bind(*hold).bind(*quota).bind(*at);
        });
        q.push(" ON CONFLICT DO NOTHING");
        conn.run(q).await?;
    }
    Ok(taken)
}
