//! Rate limits and caps under concurrency: many turns against one limited
//! subject at the same moment, on one instance and on two sharing one
//! PostgreSQL, produce exactly the limit (issue: limits were check-then-act
//! on audit rows written at commit, and ten concurrent turns sent ten mails).

mod common;

use std::sync::Arc;

use frontdesk::{
    channels::email::{EmailChannel, Outcome, Skip, Source},
    config::{Limit, Settings},
    directory::import::import_dir,
    engine::Engine,
    store::{Quota, Store, Taken},
};

/// Turns fired at once against one subject.
const CONCURRENT: usize = 60;

async fn engine(store: &Store, settings: &Arc<Settings>) -> Engine {
    Engine::builder(store.clone(), settings.clone()).effects(frontdesk::app::effects(store, settings)).build()
}

fn roomy_search_limits() -> Settings {
    let mut s = common::settings();
    let many = Limit { count: 10_000, period: std::time::Duration::from_secs(3600) };
    s.limits.searches_per_identity = many;
    s.limits.searches_per_identifier = many;
    s
}

async fn login_mails(store: &Store, to: &str) -> usize {
    let entries = frontdesk::mail::outbox::entries(store).await.unwrap();
    entries.iter().filter(|e| e.template == "login_info" && e.to_addr.eq_ignore_ascii_case(to)).count()
}

/// Brings `n` customers (each their own conversation) to "pick your name"
/// at Acme, whose first contact is Ann Lee.
async fn at_pick_your_name(engine: &Engine, n: usize) -> Vec<String> {
    let mut who = Vec::new();
    for i in 0..n {
        let id = format!("customer{i}");
        for line in ["I forgot my password", "user name", "alee"] {
            common::say(engine, &id, line).await;
        }
        who.push(id);
    }
    who
}

both_backends!(concurrent_picks_send_exactly_the_limit_of_login_mails, |url: String| async move {
    let store = Store::open(&url, 8).await.unwrap();
    import_dir(&store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let settings = Arc::new(roomy_search_limits());
    let engine = engine(&store, &settings).await;
    let who = at_pick_your_name(&engine, CONCURRENT).await;

    let picks = who.iter().map(|id| {
        let engine = engine.clone();
        let id = id.clone();
        tokio::spawn(async move { common::say(&engine, &id, "1").await })
    });
    let answers: Vec<Vec<String>> = futures::future::join_all(picks).await.into_iter().map(Result::unwrap).collect();

    let limit = settings.limits.recovery_mails_per_contact.count as usize;
    assert_eq!(login_mails(&store, "ann.lee@acme.example").await, limit);
    let sent = answers.iter().filter(|a| a.iter().any(|l| l.contains("is on its way"))).count();
    let refused = answers.iter().filter(|a| a.iter().any(|l| l.contains("several times recently"))).count();
    assert_eq!((sent, refused), (limit, CONCURRENT - limit), "{answers:?}");
    store.close().await;
});

/// Two instances (own stores, writers and caches) on one PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_send_exactly_the_limit() {
    let db = common::TestDb::postgres().await;
    let a = Store::open(&db.url, 8).await.unwrap();
    let b = Store::open(&db.url, 8).await.unwrap();
    import_dir(&a, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let settings = Arc::new(roomy_search_limits());
    let (ea, eb) = (engine(&a, &settings).await, engine(&b, &settings).await);
    let who = at_pick_your_name(&ea, CONCURRENT).await;

    let picks = who.iter().enumerate().map(|(i, id)| {
        let engine = if i % 2 == 0 { ea.clone() } else { eb.clone() };
        let id = id.clone();
        tokio::spawn(async move { common::say(&engine, &id, "1").await })
    });
    futures::future::join_all(picks).await.into_iter().for_each(|r| {
        r.unwrap();
    });
    assert_eq!(
        login_mails(&a, "ann.lee@acme.example").await,
        settings.limits.recovery_mails_per_contact.count as usize
    );
    a.close().await;
    b.close().await;
}

both_backends!(concurrent_searches_by_one_identity_get_exactly_the_limit, |url: String| async move {
    let store = Store::open(&url, 8).await.unwrap();
    import_dir(&store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let mut s = common::settings();
    s.limits.searches_per_identity = Limit { count: 5, period: std::time::Duration::from_secs(600) };
    s.limits.searches_per_identifier = Limit { count: 10_000, period: std::time::Duration::from_secs(3600) };
    let settings = Arc::new(s);
    let engine = engine(&store, &settings).await;
    // One identity, many conversations (as many chat threads or mails).
    let mut keys = Vec::new();
    for i in 0..CONCURRENT {
        let key = format!("thread{i}");
        for line in ["I forgot my password", "user name"] {
            common::say_in(&engine, &key, "mallory", line).await;
        }
        keys.push(key);
    }
    let searches = keys.iter().map(|key| {
        let engine = engine.clone();
        let key = key.clone();
        tokio::spawn(async move { common::say_in(&engine, &key, "mallory", "alee").await.join("\n") })
    });
    let answers: Vec<String> = futures::future::join_all(searches).await.into_iter().map(Result::unwrap).collect();
    let found = answers.iter().filter(|a| a.contains("I found your company record")).count();
    assert_eq!(found, 5, "{answers:?}");
    store.close().await;
});

both_backends!(a_quota_is_taken_atomically_and_once_per_hold, |url: String| async move {
    let store = Store::open(&url, 8).await.unwrap();
    let quota = [Quota { key: "q".into(), count: 7, period_ms: 60_000 }];
    let takes = (0..CONCURRENT).map(|i| {
        let (store, quota) = (store.clone(), quota.clone());
        tokio::spawn(async move { store.take_quota(&format!("hold{i}"), &quota, 1_000).await.unwrap() })
    });
    let taken: Vec<Taken> = futures::future::join_all(takes).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(taken.iter().filter(|t| **t == Taken::Granted).count(), 7);
    // Counted in one-second buckets (a sixtieth of the period): the uses
    // leave the window when their bucket has, a little late.
    let refused = |wait_ms| Taken::Refused { quota: "q".into(), wait_ms };
    assert_eq!(store.take_quota("hold-x", &quota, 2_000).await.unwrap(), refused(60_000));
    // The same hold again: granted without counting.
    let granted_hold = (0..CONCURRENT).find(|i| taken[*i] == Taken::Granted).unwrap();
    assert_eq!(store.take_quota(&format!("hold{granted_hold}"), &quota, 2_000).await.unwrap(), Taken::Granted);
    assert_eq!(store.quota_used("q", 0).await.unwrap(), 7);
    // Once the period has passed, it is free again.
    assert_eq!(store.take_quota("early", &quota, 61_999).await.unwrap(), refused(1_000));
    assert_eq!(store.take_quota("later", &quota, 62_000).await.unwrap(), Taken::Granted);
    // Uses no limit looks back to are pruned.
    let settings = common::settings();
    let day = 86_400_000;
    assert_eq!(frontdesk::account::limits::prune(&store, &settings, 62_000 + day).await.unwrap(), 1, "one bucket");
    assert_eq!(store.quota_used("q", 0).await.unwrap(), 1);
    store.close().await;
});

// One effect may take several quotas in turn under its hold (a duplicate
// check takes the search quotas, then the contact's login-mail quota): the
// second take counts against its own quota, it is no repeat of the first.
both_backends!(one_hold_counts_once_per_quota, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let search = [Quota { key: "search".into(), count: 100, period_ms: 60_000 }];
    let mails = [Quota { key: "mails".into(), count: 1, period_ms: 60_000 }];
    assert_eq!(store.take_quota("effect-1", &search, 1_000).await.unwrap(), Taken::Granted);
    assert_eq!(store.take_quota("effect-1", &mails, 1_000).await.unwrap(), Taken::Granted);
    assert_eq!(store.quota_used("mails", 0).await.unwrap(), 1, "the hold counted the second quota");
    assert_eq!(store.take_quota("effect-1", &mails, 1_000).await.unwrap(), Taken::Granted, "a retry is no new use");
    assert!(matches!(store.take_quota("effect-2", &search, 1_000).await.unwrap(), Taken::Granted));
    assert!(matches!(store.take_quota("effect-2", &mails, 1_000).await.unwrap(), Taken::Refused { .. }));
    store.close().await;
});

fn first_mail(i: usize, reply_to: &str) -> Vec<u8> {
    format!(
        "From: sender{i}@elsewhere.example\r\nReply-To: {reply_to}\r\nTo: support@frontdesk.example\r\n\
         Subject: URGENT pay at https://evil.example\r\nMessage-ID: <m{i}@elsewhere.example>\r\n\r\nI forgot my password\r\n"
    )
    .into_bytes()
}

/// Handles `CONCURRENT` first mails at once, mail `i` answered to
/// `reply_to(i)`; returns how many were answered and how many skipped for `cap`.
async fn first_mails_at_once(
    store: &Store,
    settings: Settings,
    reply_to: impl Fn(usize) -> String,
    cap: Skip,
) -> (usize, usize) {
    let settings = Arc::new(settings);
    let channel = EmailChannel::new(engine(store, &settings).await, settings.clone());
    let mails = (0..CONCURRENT).map(|i| (i, first_mail(i, &reply_to(i)), Source::Ingest));
    let outcomes = channel.handle_many(mails.collect(), CONCURRENT).await;
    let answered = outcomes.iter().filter(|(_, o)| matches!(o, Ok(Outcome::Answered { .. }))).count();
    let capped = outcomes.iter().filter(|(_, o)| matches!(o, Ok(Outcome::Skipped(s)) if *s == cap)).count();
    (answered, capped)
}

both_backends!(concurrent_first_mails_naming_one_address_get_exactly_the_cap, |url: String| async move {
    let store = Store::open(&url, 8).await.unwrap();
    let mut s = common::settings();
    s.email.answers_per_sender_per_day = 20;
    // Sub-addresses of one mailbox count as that mailbox.
    let counts = first_mails_at_once(&store, s, |i| format!("victim+{i}@target.example"), Skip::DailyCap).await;
    assert_eq!(counts, (20, CONCURRENT - 20));
    store.close().await;
});

both_backends!(unproven_addresses_are_capped_per_domain_and_never_get_the_senders_words, |url: String| async move {
    let store = Store::open(&url, 8).await.unwrap();
    let mut s = common::settings();
    s.email.answers_per_unproven_domain_per_day = 10;
    let counts = first_mails_at_once(&store, s, |i| format!("person{i}@target.example"), Skip::DomainCap).await;
    assert_eq!(counts, (10, CONCURRENT - 10));
    for e in frontdesk::mail::outbox::entries(&store).await.unwrap() {
        assert!(!e.context.contains("evil.example") && !e.context.contains("URGENT"), "{}", e.context);
    }
    store.close().await;
});

both_backends!(a_chat_identity_spends_no_search_on_the_verified_sender_shortcut, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    import_dir(&store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let settings = Arc::new(common::settings());
    let engine = engine(&store, &settings).await;
    // A Discord member is verified by the platform, but a user id is no
    // address on record: each of their searches is one search.
    let allowed = settings.limits.searches_per_identity.count;
    for i in 0..allowed {
        let mut last = Vec::new();
        for line in ["I forgot my password", "user name", "alee"] {
            let mut inbound =
                frontdesk::engine::Inbound::new("discord", &format!("thread{i}"), "900000000000000042", line);
            inbound.verified = Some("discord".into());
            let reply = engine.handle(inbound).await.unwrap();
            engine.delivered(&reply.messages).await.unwrap();
            last = common::lines(&reply);
        }
        assert!(last[0].starts_with("I found your company record"), "search {}: {last:?}", i + 1);
    }
    store.close().await;
});
