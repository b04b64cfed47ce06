//! The 6-hour follow-up of an account in review, on a controllable clock.

mod common;

use std::{sync::Arc, time::Duration};

use frontdesk::{
    account::followup::run_due,
    directory::Directory,
    engine::{Clock, Engine},
    store::Store,
};

const PROFILE: &[&str] = &[
    "create a new account",
    "Volga Data",
    "Anna",
    "Petrova",
    "anna@volga.example",
    "{code}",
    "Russia",
    "Tverskaya 1",
    "Moscow",
    "none",
    "125009",
    "+7 495 123 4567",
    "yes",
];

async fn pending_account(url: &str, clock: &Clock) -> (Store, Arc<frontdesk::config::Settings>, String) {
    pending_account_with(url, clock, PROFILE).await
}

async fn pending_account_with(
    url: &str,
    clock: &Clock,
    profile: &[&str],
) -> (Store, Arc<frontdesk::config::Settings>, String) {
    let store = Store::open(url, 4).await.unwrap();
    let settings = Arc::new(common::settings());
    let engine = Engine::builder(store.clone(), settings.clone())
        .effects(frontdesk::app::effects(&store, &settings))
        .clock(clock.clone())
        .build();
    let mut last = Vec::new();
    for line in profile {
        last = common::say(&engine, "anna", line).await;
    }
    assert!(last[0].contains("needs a full trade-compliance review"), "{last:?}");
    let org_id = last[0].split("Org ID ").nth(1).unwrap().split(',').next().unwrap().to_string();
    assert_eq!(Directory::new(store.clone()).company(&org_id).await.unwrap().unwrap().status, "pending_review");
    (store, settings, org_id)
}

both_backends!(the_review_passes_after_six_hours, |url: String| async move {
    let clock = Clock::manual(1_800_000_000_000);
    let (store, settings, org_id) = pending_account(&url, &clock).await;
    clock.advance(Duration::from_secs(5 * 3600));
    assert_eq!(run_due(&store, &settings, clock.now_ms()).await.unwrap(), 0, "not due yet");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(run_due(&store, &settings, clock.now_ms()).await.unwrap(), 1);
    assert_eq!(run_due(&store, &settings, clock.now_ms()).await.unwrap(), 0, "it ran once");
    assert_eq!(Directory::new(store.clone()).company(&org_id).await.unwrap().unwrap().status, "active");
    let last = frontdesk::mail::outbox::entries(&store).await.unwrap().pop().unwrap();
    assert_eq!((last.to_addr.as_str(), last.template.as_str()), ("anna@volga.example", "account_approved"));
});

both_backends!(the_review_refuses_when_the_lists_changed, |url: String| async move {
    let clock = Clock::manual(1_800_000_000_000);
    let (store, settings, org_id) = pending_account(&url, &clock).await;
    // While the account waited, its country was embargoed.
    let mut changed = (*settings).clone();
    changed.screening.embargoed.push(("RU".into(), None));
    clock.advance(Duration::from_secs(6 * 3600));
    assert_eq!(run_due(&store, &changed, clock.now_ms()).await.unwrap(), 1);
    assert_eq!(Directory::new(store.clone()).company(&org_id).await.unwrap().unwrap().status, "refused");
    let last = frontdesk::mail::outbox::entries(&store).await.unwrap().pop().unwrap();
    assert_eq!((last.to_addr.as_str(), last.template.as_str()), ("anna@volga.example", "account_refused"));
    // The refusal names the regional customer service.
    assert!(last.context.contains("customerservice.emea@example.com"), "{}", last.context);
});

both_backends!(an_address_the_review_still_cannot_place_stays_with_a_person, |url: String| async move {
    let clock = Clock::manual(1_800_000_000_000);
    // A region that is only close to an embargoed one: review at sign-up,
    // and the full review cannot clear it either.
    let profile: Vec<&str> = PROFILE
        .iter()
        .map(|l| match *l {
            "Volga Data" => "Kyiv Soft",
            "anna@volga.example" => "anna@kyivsoft.example",
            "Russia" => "Ukraine",
            "Tverskaya 1" => "Khreshchatyk 1",
            "Moscow" => "Kyiv",
            "none" => "Donetzk",
            "125009" => "01001",
            "+7 495 123 4567" => "+380 44 123 4567",
            other => other,
        })
        .collect();
    let (store, settings, org_id) = pending_account_with(&url, &clock, &profile).await;
    let mails = frontdesk::mail::outbox::entries(&store).await.unwrap().len();
    clock.advance(Duration::from_secs(6 * 3600));
    assert_eq!(run_due(&store, &settings, clock.now_ms()).await.unwrap(), 1);
    assert_eq!(Directory::new(store.clone()).company(&org_id).await.unwrap().unwrap().status, "pending_review");
    assert_eq!(frontdesk::mail::outbox::entries(&store).await.unwrap().len(), mails, "nothing is promised on doubt");
    assert_eq!(run_due(&store, &settings, clock.now_ms()).await.unwrap(), 0, "the job is done: a person decides");

    // The person: `frontdesk screening approve ORG --agent dana`.
    let decide = frontdesk::account::followup::decide;
    assert!(decide(&store, &settings, &org_id, true, "dana", clock.now_ms()).await.unwrap());
    assert_eq!(Directory::new(store.clone()).company(&org_id).await.unwrap().unwrap().status, "active");
    let last = frontdesk::mail::outbox::entries(&store).await.unwrap().pop().unwrap();
    assert_eq!((last.to_addr.as_str(), last.template.as_str()), ("anna@kyivsoft.example", "account_approved"));
    let audit = store.audit_log(1).await.unwrap();
    assert_eq!((audit[0].2.as_str(), audit[0].4.as_str()), ("agent:dana", "screening_decided"));
    assert!(!decide(&store, &settings, &org_id, false, "dana", clock.now_ms()).await.unwrap(), "decided once");
});
