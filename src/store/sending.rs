//! Claims on outbound chat messages while a channel sends them. The
//! instances of one deployment share the transcript: the instance that
//! claims a message sends it, the others leave it alone until the claim
//! lapses (its sender died mid-send), so a member is not sent one reply
//! twice when a redelivered event reaches a second instance while the first
//! is still posting.

use super::{
    batch::{in_seq_ranges, seq_ranges, SEQ_RANGES_PER_STATEMENT},
    exec::Conn,
    sql::{pow2_chunks, Sql},
    Result, Store,
};

impl Store {
    /// Claims those of `ids` (`(conversation_id, seq)` of outbound messages)
    /// that are undelivered and unclaimed at `now_ms`, until `until_ms`.
    /// Returns the ones this call claimed, in no particular order.
    pub async fn claim_sending(&self, ids: &[(i64, i64)], now_ms: i64, until_ms: i64) -> Result<Vec<(i64, i64)>> {
        let mut conn = self.pool.acquire().await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for chunk in pow2_chunks(&seq_ranges(ids), SEQ_RANGES_PER_STATEMENT) {
            let mut q = Sql::new(&*conn, "UPDATE messages SET sending_until = ");
            q.bind(until_ms).push(" WHERE direction = 'out' AND delivered_at IS NULL AND (sending_until IS NULL OR ");
            q.push("sending_until <= ").bind(now_ms).push(") AND ");
            in_seq_ranges(&mut q, chunk);
            q.push(" RETURNING conversation_id, seq");
            claimed.extend(conn.rows::<(i64, i64)>(q).await?);
        }
        Ok(claimed)
    }

    /// Gives back claims on messages that were not sent after all (a send
    /// failed): the member's next turn, or the sweep, sends them.
    pub async fn release_sending(&self, ids: &[(i64, i64)]) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        for chunk in pow2_chunks(&seq_ranges(ids), SEQ_RANGES_PER_STATEMENT) {
            let mut q = Sql::new(&*conn, "UPDATE messages SET sending_until = NULL WHERE delivered_at IS NULL AND ");
            in_seq_ranges(&mut q, chunk);
            conn.run(q).await?;
        }
        Ok(())
    }
}
