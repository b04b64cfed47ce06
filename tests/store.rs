//! The store's contract, run against SQLite and PostgreSQL alike.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use frontdesk::store::{
    directory::NewContact, CommitOutcome, ConversationRow, ConversationWrite, Direction, Holder, NewMessage, Status,
    Store, TurnCommit, Write,
};

fn row(id: i64, key: &str) -> ConversationRow {
    ConversationRow {
        id,
        channel: "test".into(),
        conv_key: key.into(),
        sender: key.into(),
        verified: None,
        started_by: None,
        flow: "router".into(),
        flow_hash: "h1".into(),
        journal: r#"{"params":{},"entries":[]}"#.into(),
        status: Status::Waiting,
        holder: Holder::Flow,
        prompt: Some(r#"{"step":0,"text":"?","kind":{"type":"text"}}"#.into()),
        end_reason: None,
        next_seq: 2,
        expires_at: Some(1_000),
        wake_at: None,
        version: 1,
        created_at: 0,
        updated_at: 0,
    }
}

fn msgs(from_seq: i64, external: Option<&str>) -> Vec<NewMessage> {
    vec![
        NewMessage {
            seq: from_seq,
            direction: Direction::In,
            external_id: external.map(str::to_string),
            body: r#"{"text":"hi"}"#.into(),
            created_at: 0,
            delivered_at: None,
        },
        NewMessage {
            seq: from_seq + 1,
            direction: Direction::Out,
            external_id: None,
            body: r#"{"type":"text","text":"hello"}"#.into(),
            created_at: 0,
            delivered_at: None,
        },
    ]
}

both_backends!(insert_update_and_version_guard, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let r = row(7, "ann");
    assert_eq!(
        store
            .commit(TurnCommit {
                writes: vec![],
                conversation: ConversationWrite::Insert(r.clone()),
                messages: msgs(0, Some("m1"))
            })
            .await
            .unwrap(),
        CommitOutcome::Committed
    );

    // A second open conversation for the same key is refused.
    assert_eq!(
        store
            .commit(TurnCommit {
                writes: vec![],
                conversation: ConversationWrite::Insert(row(8, "ann")),
                messages: vec![]
            })
            .await
            .unwrap(),
        CommitOutcome::Conflict
    );

    // Update from version 1 wins once; a second update from version 1 is stale.
    let mut next = r.clone();
    next.version = 2;
    next.next_seq = 4;
    next.journal = r#"{"params":{},"entries":[{"k":"say"}]}"#.into();
    let up = |m| TurnCommit {
        writes: vec![],
        conversation: ConversationWrite::Update { row: next.clone(), expected_version: 1, expected_status: r.status },
        messages: m,
    };
    assert_eq!(store.commit(up(msgs(2, Some("m2")))).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(store.commit(up(msgs(2, Some("m3")))).await.unwrap(), CommitOutcome::Conflict);
    // The losing turn left nothing behind: its inbound id is not taken.
    assert!(!store.inbound_seen("test", "m3").await.unwrap());

    let stored = store.open_conversation("test", "ann").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.next_seq), (2, 4));
    assert_eq!(stored.journal, next.journal);
    let transcript = store.transcript(7).await.unwrap();
    assert_eq!(transcript.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    store.close().await;
});

// An update sets the status only when it changes (see ConversationWrite):
// both kinds, committed together, each land whole, and the one that closed
// its conversation freed the key for a new one.
both_backends!(updates_that_keep_and_change_the_status, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let (ann, bob) = (row(21, "ann2"), row(22, "bob2"));
    for r in [&ann, &bob] {
        let first = TurnCommit { writes: vec![], conversation: ConversationWrite::Insert(r.clone()), messages: vec![] };
        assert_eq!(store.commit(first).await.unwrap(), CommitOutcome::Committed);
    }
    let update = |r: &ConversationRow, status: Status| {
        let mut next = r.clone();
        next.version = 2;
        next.status = status;
        next.journal = format!(r#"{{"params":{{}},"entries":[],"by":"{}"}}"#, r.conv_key);
        next.expires_at = Some(2_000);
        TurnCommit {
            writes: vec![],
            conversation: ConversationWrite::Update { row: next, expected_version: 1, expected_status: r.status },
            messages: vec![],
        }
    };
    let (kept, closed) =
        tokio::join!(store.commit(update(&ann, Status::Waiting)), store.commit(update(&bob, Status::Done)));
    assert_eq!((kept.unwrap(), closed.unwrap()), (CommitOutcome::Committed, CommitOutcome::Committed));

    let stored = store.open_conversation("test", "ann2").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.status, stored.expires_at), (2, Status::Waiting, Some(2_000)));
    assert!(stored.journal.contains("ann2"));
    assert!(store.open_conversation("test", "bob2").await.unwrap().is_none(), "bob2's conversation is closed");
    let again =
        TurnCommit { writes: vec![], conversation: ConversationWrite::Insert(row(23, "bob2")), messages: vec![] };
    assert_eq!(store.commit(again).await.unwrap(), CommitOutcome::Committed);
    store.close().await;
});

both_backends!(duplicate_inbound_is_refused, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let r = row(11, "bob");
    store
        .commit(TurnCommit {
            writes: vec![],
            conversation: ConversationWrite::Insert(r.clone()),
            messages: msgs(0, Some("dup")),
        })
        .await
        .unwrap();
    let mut next = r.clone();
    next.version = 2;
    let again = TurnCommit {
        writes: vec![],
        conversation: ConversationWrite::Update { row: next, expected_version: 1, expected_status: r.status },
        messages: msgs(2, Some("dup")),
    };
    assert_eq!(store.commit(again).await.unwrap(), CommitOutcome::Duplicate);
    // Nothing of the duplicate turn was applied.
    assert_eq!(store.open_conversation("test", "bob").await.unwrap().unwrap().version, 1);
    assert!(store.inbound_seen("test", "dup").await.unwrap());
    store.close().await;
});

both_backends!(delivery_acknowledgement, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    store
        .commit(TurnCommit {
            writes: vec![],
            conversation: ConversationWrite::Insert(row(21, "cy")),
            messages: msgs(0, None),
        })
        .await
        .unwrap();
    assert_eq!(store.undelivered(21).await.unwrap().len(), 1);
    // The inbound message at seq 0 is in the range but is no delivery.
    store.ack_delivered(vec![(21, 0), (21, 1)], 99).await.unwrap();
    assert!(store.undelivered(21).await.unwrap().is_empty());
    let transcript = store.transcript(21).await.unwrap();
    assert_eq!((transcript[0].delivered_at, transcript[1].delivered_at), (None, Some(99)));
    // Acknowledged again (a redelivery): the first delivery time stays.
    store.ack_delivered(vec![(21, 1)], 150).await.unwrap();
    assert_eq!(store.transcript(21).await.unwrap()[1].delivered_at, Some(99));
    store.close().await;
});

both_backends!(a_reply_being_sent_is_claimed_by_one_sender, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let mut messages = msgs(0, None);
    messages.extend(msgs(2, None));
    store
        .commit(TurnCommit { writes: vec![], conversation: ConversationWrite::Insert(row(31, "cl")), messages })
        .await
        .unwrap();
    let sorted = |mut v: Vec<(i64, i64)>| {
        v.sort();
        v
    };
    // Seq 0 and 2 are inbound: no sender claims them.
    let all = [(31, 0), (31, 1), (31, 2), (31, 3)];
    assert_eq!(sorted(store.claim_sending(&all, 100, 200).await.unwrap()), vec![(31, 1), (31, 3)]);
    assert!(store.claim_sending(&all, 150, 250).await.unwrap().is_empty(), "claimed by another sender");
    // A failed send gives its claim back; the other claim holds.
    store.release_sending(&[(31, 3)]).await.unwrap();
    assert_eq!(store.claim_sending(&all, 160, 260).await.unwrap(), vec![(31, 3)]);
    // A sender that died: its claim lapses.
    store.ack_delivered(vec![(31, 3)], 170).await.unwrap();
    assert_eq!(store.claim_sending(&all, 200, 300).await.unwrap(), vec![(31, 1)], "lapsed at 200; 3 is delivered");
    store.close().await;
});
both_backends!(flow_sources_and_expiry_queries, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    store.save_flow_source("abc", "router", "say(\"v1\");", 1).await.unwrap();
    store.save_flow_source("abc", "router", "ignored", 2).await.unwrap();
    assert_eq!(store.flow_source("abc").await.unwrap(), Some(("router".into(), "say(\"v1\");".into())));
    assert_eq!(store.flow_source("nope").await.unwrap(), None);

    store
        .commit(TurnCommit {
            writes: vec![],
            conversation: ConversationWrite::Insert(row(31, "dee")),
            messages: vec![],
        })
        .await
        .unwrap();
    assert!(store.expired_conversations(1_000, 10).await.unwrap().is_empty());
    assert_eq!(store.expired_conversations(1_001, 10).await.unwrap()[0].id, 31);
    store.close().await;
});

both_backends!(concurrent_commits_are_batched_and_all_land, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..300i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let r = row(1000 + i, &format!("k{i}"));
            store
                .commit(TurnCommit {
                    writes: vec![],
                    conversation: ConversationWrite::Insert(r),
                    messages: msgs(0, Some(&format!("e{i}"))),
                })
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), CommitOutcome::Committed);
    }
    for i in [0i64, 150, 299] {
        assert_eq!(store.transcript(1000 + i).await.unwrap().len(), 2);
    }
    store.close().await;
});

both_backends!(a_bad_turn_fails_alone, |url: String| async move {
    // A write that violates a foreign key (a contact of no company) fails
    // its own turn, not the turns batched with it.
    let store = Store::open(&url, 4).await.unwrap();
    let orphan = Write::Contact(NewContact {
        org_id: frontdesk::domain::OrgId::parse("NO-SUCH-ORG").unwrap(),
        username: "ghost".into(),
        first_name: "G".into(),
        last_name: "Host".into(),
        email: frontdesk::domain::EmailAddress::parse("ghost@example.com").unwrap(),
        phone: None,
        role: "user".into(),
    });
    let (a, b) = tokio::join!(
        store.commit(TurnCommit {
            writes: vec![orphan],
            conversation: ConversationWrite::Insert(row(50, "bad")),
            messages: vec![]
        }),
        store.commit(TurnCommit {
            writes: vec![],
            conversation: ConversationWrite::Insert(row(51, "good")),
            messages: msgs(0, None)
        }),
    );
    assert!(a.is_err());
    assert_eq!(b.unwrap(), CommitOutcome::Committed);
    store.close().await;
});

both_backends!(discord_places_are_claimed_once_and_owed_messages_found, |url: String| async move {
    use frontdesk::store::PrivatePlace;
    let store = Store::open(&url, 4).await.unwrap();
    let place =
        |channel: &str| PrivatePlace { user_id: "42".into(), channel_id: channel.into(), kind: "thread".into() };
    // Two instances race to open a thread: the first claim holds for both.
    assert_eq!(store.claim_discord_private(&place("100"), 1).await.unwrap(), place("100"));
    assert_eq!(store.claim_discord_private(&place("200"), 2).await.unwrap(), place("100"));
    assert_eq!(store.discord_private("42").await.unwrap(), Some(place("100")));
    assert_eq!(store.discord_private_owner("100").await.unwrap().map(|p| p.user_id), Some("42".into()));
    assert_eq!(store.discord_private_owner("200").await.unwrap(), None);
    // Forgetting another channel changes nothing; the right one frees the member.
    store.forget_discord_private("42", "200").await.unwrap();
    assert!(store.discord_private("42").await.unwrap().is_some());
    store.forget_discord_private("42", "100").await.unwrap();
    assert_eq!(store.discord_private("42").await.unwrap(), None);
    assert_eq!(store.claim_discord_private(&place("300"), 3).await.unwrap(), place("300"));

    // Owed messages: undelivered outbound ones of the channel, in the window.
    let mut r = row(9, "42");
    r.channel = "discord".into();
    let mut m = msgs(0, None);
    m[1].created_at = 500;
    let commit = TurnCommit { writes: vec![], conversation: ConversationWrite::Insert(r), messages: m };
    assert_eq!(store.commit(commit).await.unwrap(), CommitOutcome::Committed);
    let owed = store.undelivered_on("discord", 0, 1_000, 10).await.unwrap();
    assert_eq!(
        owed.iter().map(|o| (o.conv_key.as_str(), o.conversation_id, o.seq)).collect::<Vec<_>>(),
        [("42", 9, 1)]
    );
    assert!(store.undelivered_on("discord", 0, 400, 10).await.unwrap().is_empty(), "too young");
    assert!(store.undelivered_on("discord", 600, 1_000, 10).await.unwrap().is_empty(), "given up");
    assert!(store.undelivered_on("test", 0, 1_000, 10).await.unwrap().is_empty(), "another channel");
    store.ack_delivered(vec![(9, 1)], 700).await.unwrap();
    store.flush().await;
    assert!(store.undelivered_on("discord", 0, 1_000, 10).await.unwrap().is_empty());
    assert_eq!(store.latest_conversation_of("discord", "42").await.unwrap().map(|c| c.id), Some(9));
    store.close().await;
});

both_backends!(one_instance_leads_a_named_piece_of_work, |url: String| async move {
    let a = Store::open(&url, 4).await.unwrap();
    let b = Store::open(&url, 4).await.unwrap();
    let mut lead = a.try_lead("discord:1").await.unwrap().expect("the first asks, the first leads");
    assert!(lead.holds().await);
    if a.backend() == "sqlite" {
        // One process's store: it always leads.
        assert!(b.try_lead("discord:1").await.unwrap().is_some());
    } else {
        assert!(b.try_lead("discord:1").await.unwrap().is_none(), "a second instance stands by");
        assert!(b.try_lead("discord:2").await.unwrap().is_some(), "other work is free");
        drop(lead);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while b.try_lead("discord:1").await.unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "the lead was not freed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    a.close().await;
    b.close().await;
});

both_backends!(work_led_by_one_instance_moves_when_it_stops, |url: String| async move {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        time::Duration,
    };
    let started = Arc::new(AtomicUsize::new(0));
    let instance = |store: Store, stop: tokio::sync::watch::Receiver<bool>| {
        let started = started.clone();
        tokio::spawn(async move {
            frontdesk::background::leading(&store, "mailbox", Duration::from_millis(50), stop, |mut halted| {
                let started = started.clone();
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = halted.changed().await;
                    Ok(())
                }
            })
            .await
        })
    };
    let (a, b) = (Store::open(&url, 4).await.unwrap(), Store::open(&url, 4).await.unwrap());
    let (stop_a, stopped_a) = tokio::sync::watch::channel(false);
    let (stop_b, stopped_b) = tokio::sync::watch::channel(false);
    let first = instance(a.clone(), stopped_a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = instance(b.clone(), stopped_b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sqlite = a.backend() == "sqlite";
    // SQLite is one process's store: there, every instance leads.
    assert_eq!(started.load(Ordering::SeqCst), if sqlite { 2 } else { 1 });
    stop_a.send(true).unwrap();
    first.await.unwrap().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while started.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "the standby instance did not take over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_b.send(true).unwrap();
    second.await.unwrap().unwrap();
    a.close().await;
    b.close().await;
});

/// The schema as a comparable set: each table's columns, and each index
/// created by name (constraint indexes are the tables' business).
type Schema = (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>);

async fn sqlite_schema(url: &str) -> Schema {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut columns = BTreeMap::new();
    for (t,) in tables {
        let cols: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM pragma_table_info($1)").bind(&t).fetch_all(&mut c).await.unwrap();
        columns.insert(t, cols.into_iter().map(|(c,)| c).collect());
    }
    let indexes: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(&mut c)
            .await
            .unwrap();
    (columns, indexes.into_iter().map(|(i,)| i).collect())
}

async fn postgres_schema(url: &str) -> Schema {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut columns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (t, col) in cols {
        columns.entry(t).or_default().insert(col);
    }
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT i.indexname::text FROM pg_indexes i WHERE i.schemaname = 'public' AND NOT EXISTS \
         (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    (columns, indexes.into_iter().map(|(i,)| i).collect())
}

// The two migration sets are written twice (the dialects differ in types and
// defaults), so this proves they define the same tables, columns and named
// indexes: a migration added to one side only fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrations_define_the_same_schema() {
    let lite = common::TestDb::sqlite();
    Store::open(&lite.url, 2).await.unwrap().close().await;
    let pg = common::TestDb::postgres().await;
    Store::open(&pg.url, 2).await.unwrap().close().await;
    let (sqlite, postgres) = (sqlite_schema(&lite.url).await, postgres_schema(&pg.url).await);
    assert!(sqlite.0.len() >= 15, "tables found: {:?}", sqlite.0.keys());
    assert_eq!(sqlite.0, postgres.0, "tables and columns");
    assert_eq!(sqlite.1, postgres.1, "named indexes");
}

// Two processes starting on a fresh data folder at once (`serve` and `chat`)
// both migrate the new database: one of them used to fail with "table
// conversations already exists".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_opening_a_fresh_sqlite_database_at_once_both_start() {
    for _ in 0..10 {
        let db = common::TestDb::sqlite();
        let (a, b) = tokio::join!(Store::open(&db.url, 2), Store::open(&db.url, 2));
        let (a, b) = (a.expect("first store"), b.expect("second store"));
        a.close().await;
        b.close().await;
    }
}

/// Migrates a database up to (and with) `version` only.
async fn migrate_to<DB: sqlx::Database>(pool: &sqlx::Pool<DB>, mut migrator: sqlx::migrate::Migrator, version: i64)
where
    <DB as sqlx::Database>::Connection: sqlx::migrate::Migrate,
{
    migrator.migrations = migrator.migrations.iter().filter(|m| m.version <= version).cloned().collect();
    migrator.run(pool).await.unwrap();
}

// Migration 0008 rebuilds the contacts table on SQLite (its unique keys
// become named indexes a first import can drop): the rows, their ids and
// the recovery tokens that point at them survive, and the keys stay unique.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_survive_their_keys_becoming_named_indexes() {
    const SEED: &str = "INSERT INTO companies (org_id, name, name_key, street, city, country, phone, created_at, \
        updated_at) VALUES ('ORG-1', 'Acme', 'acme', 'Main St 1', 'Berlin', 'DE', '+4930901820', 1, 1); \
        INSERT INTO contacts (org_id, username, username_key, first_name, last_name, last_name_key, email, \
        email_key, role, created_at, updated_at) VALUES ('ORG-1', 'ann', 'ann', 'Ann', 'Lee', 'lee', \
        'ann@acme.example', 'ann@acme.example', 'admin', 1, 1); \
        INSERT INTO recovery_tokens (token_hash, contact_id, created_at, expires_at) \
        SELECT 'h', id, 1, 2 FROM contacts WHERE username_key = 'ann';";
    const DUPLICATE: &str = "INSERT INTO contacts (org_id, username, username_key, first_name, last_name, \
        last_name_key, email, email_key, role, created_at, updated_at) VALUES ('ORG-1', 'Ann', 'ann', 'A', 'L', 'l', \
        'x@acme.example', 'x@acme.example', 'user', 1, 1)";
    const NEXT: &str = "INSERT INTO contacts (org_id, username, username_key, first_name, last_name, last_name_key, \
        email, email_key, role, created_at, updated_at) VALUES ('ORG-1', 'bob', 'bob', 'B', 'M', 'm', \
        'bob@acme.example', 'bob@acme.example', 'user', 1, 1) RETURNING id";
    use sqlx::Executor as _;

    let lite = common::TestDb::sqlite();
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .after_connect(|c, _| Box::pin(async move { c.execute("PRAGMA foreign_keys = ON").await.map(|_| ()) }))
        .connect(&lite.url)
        .await
        .unwrap();
    migrate_to(&pool, sqlx::migrate!("migrations/sqlite"), 7).await;
    pool.execute(SEED).await.unwrap();
    migrate_to(&pool, sqlx::migrate!("migrations/sqlite"), 8).await;
    let (fk_problems,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM pragma_foreign_key_check").fetch_one(&pool).await.unwrap();
    assert_eq!(fk_problems, 0);
    let (tokens_sql,): (String,) =
        sqlx::query_as("SELECT sql FROM sqlite_master WHERE name = 'recovery_tokens'").fetch_one(&pool).await.unwrap();
    assert!(tokens_sql.contains("REFERENCES contacts (id)"), "{tokens_sql}");
    let (id, email): (i64, String) = sqlx::query_as("SELECT id, email FROM contacts").fetch_one(&pool).await.unwrap();
    assert_eq!((id, email.as_str()), (1, "ann@acme.example"));
    assert!(pool.execute(DUPLICATE).await.is_err(), "user names stay unique");
    let (next,): (i64,) = sqlx::query_as(NEXT).fetch_one(&pool).await.unwrap();
    assert_eq!(next, 2, "ids go on after the last one");
    assert!(pool.execute("DELETE FROM contacts WHERE id = 1").await.is_err(), "the token still holds its contact");
    pool.close().await;

    let pg = common::TestDb::postgres().await;
    let pool = sqlx::postgres::PgPoolOptions::new().connect(&pg.url).await.unwrap();
    migrate_to(&pool, sqlx::migrate!("migrations/postgres"), 7).await;
    pool.execute(SEED).await.unwrap();
    migrate_to(&pool, sqlx::migrate!("migrations/postgres"), 8).await;
    assert!(pool.execute(DUPLICATE).await.is_err(), "user names stay unique");
    assert!(pool.execute("DELETE FROM contacts WHERE id = 1").await.is_err(), "the token still holds its contact");
    pool.close().await;
}

// `frontdesk_leader{lead}` is 1 while this instance leads the work, 0 after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_gauge_shows_a_lead_while_it_is_held() {
    use std::time::Duration;
    let db = common::TestDb::sqlite();
    let store = Store::open(&db.url, 2).await.unwrap();
    let gauge = || {
        let text = frontdesk::metrics::get().encode();
        text.lines().find(|l| l.starts_with(r#"frontdesk_leader{lead="gauge-test"}"#)).map(|l| l.ends_with(" 1"))
    };
    let (working, mut at_work) = tokio::sync::watch::channel(false);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let led = {
        let store = store.clone();
        tokio::spawn(async move {
            frontdesk::background::leading(&store, "gauge-test", Duration::from_millis(50), stopped, |mut halted| {
                let working = working.clone();
                async move {
                    let _ = working.send(true);
                    let _ = halted.changed().await;
                    Ok(())
                }
            })
            .await
        })
    };
    at_work.wait_for(|w| *w).await.unwrap();
    assert_eq!(gauge(), Some(true));
    stop.send(true).unwrap();
    led.await.unwrap().unwrap();
    assert_eq!(gauge(), Some(false));
    store.close().await;
}
