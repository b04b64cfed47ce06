//! One batch's statements, inside the writer's transaction: the quota
//! takes, then each turn's conversation, transcript rows and effects'
//! writes, then the delivery acknowledgements (the order and the reasons
//! are in [`super::writer`]'s documentation).

use std::{
    collections::{BTreeMap, HashSet},
    time::Instant,
};

use super::{
    exec::Conn,
    quotas::Take,
    sql::{pow2_chunks, Sql, ROWS_PER_STATEMENT},
    writer::{Applied, CommitOutcome, ConversationWrite, NewMessage, TurnCommit},
    ConversationRow, Result,
};

/// Most terms of one OR chain (SQLite's parser limits expression depth to 1000).
pub(super) const SEQ_RANGES_PER_STATEMENT: usize = 128;

/// `(conversation, seq)` pairs as `(conversation, first seq, last seq)`
/// ranges of consecutive seqs.
pub(super) fn seq_ranges(acks: &[(i64, i64)]) -> Vec<(i64, i64, i64)> {
    let mut sorted = acks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(i64, i64, i64)> = Vec::new();
    for (conv, seq) in sorted {
        match ranges.last_mut() {
            Some((c, _, hi)) if *c == conv && *hi + 1 == seq => *hi = seq,
            _ => ranges.push((conv, seq, seq)),
        }
    }
    ranges
}

/// One batch's statements, inside its transaction.
pub(super) async fn batch(
    conn: &mut impl Conn,
    turns: &[TurnCommit],
    takes: &[Take],
    acks: &[(i64, i64)],
    ack_time: i64,
) -> Result<Applied> {
    let started = Instant::now();
    // 0. Quota takes, first and in order: SQLite's write lock (taken by
    //    BEGIN IMMEDIATE) serialises them against every other writer; on
    //    PostgreSQL an advisory lock per quota does, across instances.
    if conn.backend().locks_quotas() {
        super::quotas::lock(conn, &Take::keys(takes)).await?;
    }
    let taken = super::quotas::take_batch(conn, takes).await?;
    let took = started.elapsed();
    let outcomes = commit_turns(conn, turns).await?;
    let committed = started.elapsed();
    ack(conn, acks, ack_time).await?;
    // Where a batch's time goes (the rest of `batch`'s micros is BEGIN and COMMIT).
    tracing::trace!(
        take_micros = took.as_micros() as u64,
        turn_micros = (committed - took).as_micros() as u64,
        ack_micros = (started.elapsed() - committed).as_micros() as u64,
        "batch stages"
    );
    Ok((outcomes, taken))
}

/// Inbound messages already processed, by platform id: one `channel = $1
/// AND external_id IN (...)` per channel, which both backends answer from
/// the unique index.
async fn already_seen(tx: &mut impl Conn, turns: &[TurnCommit]) -> Result<HashSet<(String, String)>> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in turns {
        for id in t.messages.iter().filter_map(|m| m.external_id.as_deref()) {
            wanted.entry(t.conversation.row().channel.as_str()).or_default().push(id);
        }
    }
    for (channel, ids) in &wanted {
        for chunk in pow2_chunks(ids, ROWS_PER_STATEMENT) {
            let mut q = Sql::new(tx, "SELECT channel, external_id FROM messages WHERE channel = ");
            q.bind(*channel).push(" AND external_id IN (").list(chunk.iter().copied()).push(")");
            seen.extend(tx.rows::<(String, String)>(q).await?);
        }
    }
    Ok(seen)
}

/// The turns of a batch: each commits (its conversation, transcript rows
/// and effects' writes), conflicts, or was a duplicate.
async fn commit_turns(tx: &mut impl Conn, turns: &[TurnCommit]) -> Result<Vec<CommitOutcome>> {
    let mut seen = already_seen(tx, turns).await?;
    // The guarded conversation writes, as multi-row statements whose
    // RETURNING lists the turns that won. A conversation appears at most once
    // per round, so that each winner is known; a second turn for it goes to
    // the next round, where its version no longer matches.
    let mut outcome: Vec<Option<CommitOutcome>> = vec![None; turns.len()];
    let mut pending: Vec<usize> = Vec::with_capacity(turns.len());
    for (i, turn) in turns.iter().enumerate() {
        let channel = &turn.conversation.row().channel;
        let mut dup = false;
        for id in turn.messages.iter().filter_map(|m| m.external_id.as_ref()) {
            dup |= !seen.insert((channel.clone(), id.clone()));
        }
        if dup {
            outcome[i] = Some(CommitOutcome::Duplicate);
        } else {
            pending.push(i);
        }
    }
    while !pending.is_empty() {
        let mut ids = HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) =
            pending.iter().partition(|&&i| ids.insert(turns[i].conversation.row().id));
        let writes: Vec<&ConversationWrite> = round.iter().map(|&i| &turns[i].conversation).collect();
        let won = write_conversations(tx, &writes).await?;
        for &i in &round {
            let row = turns[i].conversation.row();
            if won.contains(&row.id) {
                outcome[i] = Some(CommitOutcome::Committed);
            } else {
                // Undo the dedupe claim so the retry is not taken for a duplicate.
                for id in turns[i].messages.iter().filter_map(|m| m.external_id.as_ref()) {
                    seen.remove(&(row.channel.clone(), id.clone()));
                }
                outcome[i] = Some(CommitOutcome::Conflict);
            }
        }
        pending = later;
    }
    let outcomes: Vec<CommitOutcome> = outcome.into_iter().map(|o| o.expect("every turn has an outcome")).collect();
    let won: Vec<&TurnCommit> =
        turns.iter().zip(&outcomes).filter(|(_, o)| **o == CommitOutcome::Committed).map(|(t, _)| t).collect();
    write_messages(tx, &won).await?;
    // The effects' writes of every turn that won.
    let writes: Vec<(Option<i64>, &super::Write)> =
        won.iter().flat_map(|t| t.writes.iter().map(move |w| (Some(t.conversation.row().id), w))).collect();
    let now = won.iter().map(|t| t.conversation.row().updated_at).max().unwrap_or(0);
    super::writes::apply(tx, &writes, now).await?;
    Ok(outcomes)
}

/// New conversations (`INSERT … ON CONFLICT DO NOTHING RETURNING id`) and
/// the next state of others (`UPDATE … FROM (VALUES …) WHERE version =
/// expected RETURNING id`): the ids returned are the writes that won.
async fn write_conversations(tx: &mut impl Conn, writes: &[&ConversationWrite]) -> Result<HashSet<i64>> {
    let mut inserts: Vec<&ConversationRow> = vec![];
    // Updates that change the status, and those that keep it.
    let (mut moves, mut stays): (Vec<Guarded<'_>>, Vec<Guarded<'_>>) = (vec![], vec![]);
    for w in writes {
        match w {
            ConversationWrite::Insert(r) => inserts.push(r),
            ConversationWrite::Update { row, expected_version, expected_status } if row.status == *expected_status => {
                stays.push((row, *expected_version))
            }
            ConversationWrite::Update { row, expected_version, .. } => moves.push((row, *expected_version)),
        }
    }
    let mut won: HashSet<i64> = HashSet::new();
    for chunk in pow2_chunks(&inserts, ROWS_PER_STATEMENT) {
        let mut q = Sql::new(
            tx,
            "INSERT INTO conversations (id, channel, conv_key, sender, verified, flow, flow_hash, journal, status, \
             prompt, end_reason, next_seq, expires_at, wake_at, version, created_at, updated_at, started_by, \
             held_by) VALUES ",
        );
        q.rows(chunk, |v, r| {
            v.bind(r.id).bind(r.channel.as_str()).bind(r.conv_key.as_str()).bind(r.sender.as_str());
            v.bind(r.verified.as_deref()).bind(r.flow.as_str()).bind(r.flow_hash.as_str()).bind(r.journal.as_str());
            v.bind(r.status.as_str()).bind(r.prompt.as_deref()).bind(r.end_reason.as_deref()).bind(r.next_seq);
            v.bind(r.expires_at).bind(r.wake_at).bind(r.version).bind(r.created_at).bind(r.updated_at);
            v.bind(r.started_by.as_deref()).bind(r.holder.agent());
        });
        q.push(" ON CONFLICT DO NOTHING RETURNING id");
        won.extend(tx.rows::<(i64,)>(q).await?.into_iter().map(|(id,)| id));
    }
    won.extend(update_conversations(tx, &moves, true).await?);
    won.extend(update_conversations(tx, &stays, false).await?);
    Ok(won)
}

/// A conversation's next state and the version it must still have.
type Guarded<'a> = (&'a ConversationRow, i64);

/// `UPDATE … FROM (VALUES …) WHERE version = expected RETURNING id`, with
/// the status among the columns set only when `with_status`.
async fn update_conversations(tx: &mut impl Conn, updates: &[Guarded<'_>], with_status: bool) -> Result<Vec<i64>> {
    let mut won = Vec::new();
    for chunk in pow2_chunks(updates, ROWS_PER_STATEMENT) {
        let mut q = Sql::new(
            tx,
            "UPDATE conversations SET verified = v.column3, flow = v.column4, flow_hash = v.column5, \
             journal = v.column6, prompt = v.column7, end_reason = v.column8, next_seq = v.column9, \
             expires_at = v.column10, wake_at = v.column11, version = v.column12, updated_at = v.column13, \
             started_by = v.column14, held_by = v.column15",
        );
        q.push(if with_status { ", status = v.column16 FROM (VALUES " } else { " FROM (VALUES " });
        q.rows(chunk, |v, (r, expected)| {
            v.bind(r.id).bind(*expected).bind(r.verified.as_deref()).bind(r.flow.as_str());
            v.bind(r.flow_hash.as_str()).bind(r.journal.as_str()).bind(r.prompt.as_deref());
            v.bind(r.end_reason.as_deref()).bind(r.next_seq).bind(r.expires_at).bind(r.wake_at).bind(r.version);
            v.bind(r.updated_at).bind(r.started_by.as_deref()).bind(r.holder.agent());
            if with_status {
                v.bind(r.status.as_str());
            }
        });
        q.push(
            ") AS v WHERE conversations.id = v.column1 AND conversations.version = v.column2 \
             RETURNING conversations.id",
        );
        won.extend(tx.rows::<(i64,)>(q).await?.into_iter().map(|(id,)| id));
    }
    Ok(won)
}

/// The transcript rows of every turn that won, in one statement per chunk.
async fn write_messages(tx: &mut impl Conn, won: &[&TurnCommit]) -> Result<()> {
    let rows: Vec<(&ConversationRow, &NewMessage)> =
        won.iter().flat_map(|t| t.messages.iter().map(move |m| (t.conversation.row(), m))).collect();
    for chunk in pow2_chunks(&rows, ROWS_PER_STATEMENT) {
        let mut q = Sql::new(
            tx,
            "INSERT INTO messages (conversation_id, seq, direction, channel, external_id, body, created_at, \
             delivered_at) VALUES ",
        );
        q.rows(chunk, |v, (conv, m)| {
            v.bind(conv.id).bind(m.seq).bind(m.direction.as_str()).bind(conv.channel.as_str());
            v.bind(m.external_id.as_deref()).bind(m.body.as_str()).bind(m.created_at).bind(m.delivered_at);
        });
        q.push(" ON CONFLICT DO NOTHING");
        tx.run(q).await?;
    }
    Ok(())
}

/// Delivery acknowledgements, as seq ranges per conversation in OR chains
/// that both backends answer from the (conversation_id, seq) index, one
/// index probe per range whatever the table's statistics say (a join with a
/// `VALUES` list became a sequential scan on PostgreSQL while autovacuum had
/// not yet analysed a fast-growing table). The first delivery time is kept
/// by `COALESCE` rather than by a `delivered_at IS NULL` condition: with that
/// condition PostgreSQL used the partial index of undelivered messages,
/// whose dead entries (every ack leaves one until vacuum) made each
/// acknowledgement cost ~1 ms.
async fn ack(tx: &mut impl Conn, acks: &[(i64, i64)], ack_time: i64) -> Result<()> {
    for chunk in pow2_chunks(&seq_ranges(acks), SEQ_RANGES_PER_STATEMENT) {
        let mut q = Sql::new(tx, "UPDATE messages SET delivered_at = COALESCE(delivered_at, ");
        q.bind(ack_time).push(") WHERE direction = 'out' AND ");
        in_seq_ranges(&mut q, chunk);
        tx.run(q).await?;
    }
    Ok(())
}

/// `((conversation_id = ? AND seq BETWEEN ? AND ?) OR …)` of [`seq_ranges`]:
/// one probe of the (conversation_id, seq) index per range.
pub(super) fn in_seq_ranges(q: &mut Sql<'_>, ranges: &[(i64, i64, i64)]) {
    for (i, (conv, lo, hi)) in ranges.iter().enumerate() {
        q.push(if i == 0 { "((conversation_id = " } else { " OR (conversation_id = " });
        q.bind(*conv).push(" AND seq BETWEEN ").bind(*lo).push(" AND ").bind(*hi).push(")");
    }
    q.push(")");
}

#[cfg(test)]
mod tests {
    #[test]
    fn acks_collapse_into_ranges() {
        assert_eq!(
            super::seq_ranges(&[(2, 5), (1, 3), (1, 1), (1, 2), (2, 7), (1, 2)]),
            vec![(1, 1, 3), (2, 5, 5), (2, 7, 7)]
        );
    }
}
