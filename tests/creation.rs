//! Account creation and contact requests as an attacker would try them:
//! neither is an oracle for addresses on record, neither mails anyone who
//! has not proven their address, creations are capped, and user names never
//! run out.

mod common;

use std::sync::Arc;

use frontdesk::{
    config::{Limit, Settings},
    directory::import::import_dir,
    engine::Engine,
    mail::outbox::entries,
    store::Store,
};

fn many(count: i64) -> Limit {
    Limit { count, period: std::time::Duration::from_secs(86_400) }
}

/// Settings where only the limit under test can bite.
fn roomy() -> Settings {
    let mut s = common::settings();
    s.limits.searches_per_identity = many(100_000);
    s.limits.searches_per_identifier = many(100_000);
    s.limits.email_codes_per_address = many(100_000);
    s.limits.email_codes_per_identity = many(100_000);
    s
}

async fn setup(url: &str, settings: Settings) -> (Store, Engine) {
    let store = Store::open(url, 4).await.unwrap();
    import_dir(&store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let settings = Arc::new(settings);
    let engine =
        Engine::builder(store.clone(), settings.clone()).effects(frontdesk::app::effects(&store, &settings)).build();
    (store, engine)
}

/// Templates of the mails queued so far, with their addresses.
async fn mails(store: &Store) -> Vec<(String, String)> {
    entries(store).await.unwrap().into_iter().map(|e| (e.to_addr.to_lowercase(), e.template)).collect()
}

/// Begins an account creation in conversation `key` of `sender` up to the
/// e-mail address; returns what the assistant answered to the address.
async fn create_with(engine: &Engine, (key, sender): (&str, &str), company: &str, email: &str) -> Vec<String> {
    for line in ["create a new account", company, "Eve", "Mallory"] {
        common::say_in(engine, key, sender, line).await;
    }
    common::say_in(engine, key, sender, email).await
}

const ON_RECORD: &[&str] = &[
    "ann.lee@acme.example",
    "b.meyer@acme.example",
    "homer@globex.example",
    "peter@initech.example",
    "michael@initech.example",
];

both_backends!(creation_does_not_tell_whether_an_address_is_on_record, |url: String| async move {
    let (store, engine) = setup(&url, roomy()).await;
    // Addresses on record and addresses nobody has get the same answer,
    // and nothing but a code goes to them.
    let mut answers = Vec::new();
    for (i, email) in ON_RECORD.iter().chain(&["nobody1@acme.example", "nobody2@globex.example"]).enumerate() {
        let who = format!("eve{i}");
        let reply = create_with(&engine, (&who, &who), "Anything Ltd", email).await;
        answers.push(reply.join("\n").replace(email, "ADDRESS"));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    assert!(mails(&store).await.iter().all(|(_, t)| t == "email_code"), "{:?}", mails(&store).await);
    // A wrong code, three times: still nothing but the code.
    for code in ["000000", "000001", "000002"] {
        common::say(&engine, "eve0", code).await;
    }
    assert!(mails(&store).await.iter().all(|(_, t)| t == "email_code"));
    store.close().await;
});

both_backends!(my_name_is_not_listed_does_not_reach_another_company_s_contact, |url: String| async move {
    let (store, engine) = setup(&url, roomy()).await;
    for line in ["login", "4", "ABCD-1234-EFGH-5678", "3", "Eve", "Mallory"] {
        common::say(&engine, "eve", line).await;
    }
    let reply = common::say(&engine, "eve", "homer@globex.example").await;
    assert!(reply[0].starts_with("To make sure homer@globex.example is yours"), "{reply:?}");
    for code in ["000000", "000001", "000002"] {
        common::say(&engine, "eve", code).await;
    }
    assert_eq!(mails(&store).await, vec![("homer@globex.example".to_string(), "email_code".to_string())]);
    assert!(frontdesk::account::requests::pending(&store).await.unwrap().is_empty());
    store.close().await;
});

both_backends!(codes_to_one_address_are_capped, |url: String| async move {
    let mut s = roomy();
    s.limits.email_codes_per_address = Limit { count: 3, period: std::time::Duration::from_secs(3600) };
    let (store, engine) = setup(&url, s).await;
    let mut refused = 0;
    for i in 0..6 {
        // Sub-addresses are the same mailbox.
        let who = format!("bomber{i}");
        let reply = create_with(&engine, (&who, &who), "Anything Ltd", &format!("victim+{i}@target.example")).await;
        refused += usize::from(reply[0].starts_with("I can't send another code to that address right now"));
    }
    assert_eq!(refused, 3);
    assert_eq!(mails(&store).await.len(), 3);
    store.close().await;
});

/// Runs a whole creation with a proven address; returns the last answer.
async fn create_account(engine: &Engine, who: (&str, &str), company: &str, email: &str) -> String {
    create_with(engine, who, company, email).await;
    let mut last = Vec::new();
    for line in ["{code}", "DE", "Hauptstrasse 5", "Berlin", "none", "10115", "030 901820", "yes"] {
        last = common::say_in(engine, who.0, who.1, line).await;
    }
    last.join("\n")
}

both_backends!(one_identity_creates_at_most_its_cap, |url: String| async move {
    let mut s = roomy();
    s.limits.creations_per_identity = Limit { count: 3, period: std::time::Duration::from_secs(86_400) };
    let (store, engine) = setup(&url, s).await;
    let mut created = 0;
    for i in 0..5 {
        // One identity across several conversations.
        let key = format!("thread{i}");
        let last =
            create_account(&engine, (&key, "eve"), &format!("Spam Co {i}"), &format!("eve{i}@spam.example")).await;
        if last.contains("Your account is ready") {
            created += 1;
        } else {
            assert!(last.contains("I can't open more accounts online right now"), "{last}");
        }
    }
    assert_eq!(created, 3);
    store.close().await;
});

both_backends!(user_names_never_run_out, |url: String| async move {
    let (store, engine) = setup(&url, roomy()).await;
    let mut names = Vec::new();
    for i in 0..13 {
        let last = create_account(
            &engine,
            (&format!("info{i}"), &format!("info{i}")),
            &format!("Info Company {i}"),
            &format!("info@co{i}.example"),
        )
        .await;
        assert!(last.contains("Your account is ready"), "{last}");
        names.push(last.split("user name ").nth(1).unwrap().split(". I've").next().unwrap().to_string());
    }
    assert_eq!(&names[..3], ["info", "info2", "info3"]);
    assert!(names[10..].iter().all(|n| n.starts_with("info.") && n.len() == "info.".len() + 6), "{names:?}");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
    store.close().await;
});

both_backends!(a_possible_duplicate_waits_for_a_person_after_the_review, |url: String| async move {
    let (store, engine) = setup(&url, roomy()).await;
    create_with(&engine, ("hank", "hank"), "GLOBEX   corporation", "hank@globex-two.example").await;
    let mut last = Vec::new();
    for line in ["{code}", "United States", "1 Cypress Creek", "Cypress Creek", "OR", "97000", "(541) 555 0123", "yes"]
    {
        last = common::say(&engine, "hank", line).await;
    }
    assert!(last[0].contains("needs a full trade-compliance review"), "{last:?}");
    let org_id = last[0].split("Org ID ").nth(1).unwrap().split(',').next().unwrap().to_string();
    let later = frontdesk::engine::Clock::System.now_ms() + 7 * 3600 * 1000;
    let settings = roomy();
    assert_eq!(frontdesk::account::followup::run_due(&store, &settings, later).await.unwrap(), 1);
    let company = frontdesk::directory::Directory::new(store.clone()).company(&org_id).await.unwrap().unwrap();
    assert_eq!(company.status, "pending_review", "screening passes, but a person decides about a duplicate");
    store.close().await;
});
