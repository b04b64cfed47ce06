//! Contact requests decided by an administrator's link or an agent.

mod common;

use frontdesk::{
    account::requests::{decide, expire_due, pending, Decider, DecisionError},
    directory::{import::import_dir, Directory},
    engine::Engine,
    store::Store,
};

async fn mails(store: &Store) -> Vec<(String, String, String)> {
    let entries = frontdesk::mail::outbox::entries(store).await.unwrap();
    entries.into_iter().map(|e| (e.to_addr, e.template, e.context)).collect()
}

/// A store with the fixture directory, the default settings and the engine.
async fn setup(url: &str) -> (Store, std::sync::Arc<frontdesk::config::Settings>, Engine) {
    let store = Store::open(url, 4).await.unwrap();
    import_dir(&store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let settings = std::sync::Arc::new(common::settings());
    let engine =
        Engine::builder(store.clone(), settings.clone()).effects(frontdesk::app::effects(&store, &settings)).build();
    (store, settings, engine)
}

/// Asks, through the real flow, for Carla to join Acme; returns the link token.
async fn request(engine: &Engine, store: &Store) -> String {
    for line in
        ["login", "4", "ABCD-1234-EFGH-5678", "3", "Carla", "Schmidt", "carla@acme.example", "{code}", "030 901821"]
    {
        common::say(engine, "carla", line).await;
    }
    let (_, template, context) = mails(store).await.pop().expect("a mail to the administrator");
    assert_eq!(template, "contact_request");
    let context: serde_json::Value = serde_json::from_str(&context).unwrap();
    let url = context["decide_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_string()
}

both_backends!(an_administrator_approves_by_link_once, |url: String| async move {
    let (store, settings, engine) = setup(&url).await;
    let token = request(&engine, &store).await;
    let dir = Directory::new(store.clone());
    assert_eq!(dir.contacts("ORG-1001").await.unwrap().len(), 2, "nothing changes before the decision");

    decide(&store, &settings, Decider::Link { token: token.clone() }, true, 10).await.unwrap();
    let carla = dir.contact_by_email("CARLA@acme.example").await.unwrap().expect("Carla is a contact now");
    assert_eq!(
        (carla.org_id.as_str(), carla.role.as_str(), carla.phone.as_deref().unwrap_or_default()),
        ("ORG-1001", "user", "+4930901821")
    );
    let (to, template, _) = mails(&store).await.pop().unwrap();
    assert_eq!((to.as_str(), template.as_str()), ("carla@acme.example", "contact_welcome"));

    // The link works once.
    assert_eq!(decide(&store, &settings, Decider::Link { token }, false, 11).await, Err(DecisionError::NotPending));
    assert_eq!(
        decide(&store, &settings, Decider::Link { token: "forged".into() }, true, 11).await,
        Err(DecisionError::NotPending)
    );
    store.close().await;
});

both_backends!(an_agent_declines_and_the_requester_is_told, |url: String| async move {
    let (store, settings, engine) = setup(&url).await;
    request(&engine, &store).await;
    let number = pending(&store).await.unwrap().pop().expect("one pending request").number;
    let by = Decider::Agent { name: "dana".into(), number: number.to_lowercase() };
    assert_eq!(decide(&store, &settings, by, false, 10).await.unwrap(), number);
    assert!(Directory::new(store.clone()).contact_by_email("carla@acme.example").await.unwrap().is_none());
    let (to, template, _) = mails(&store).await.pop().unwrap();
    assert_eq!((to.as_str(), template.as_str()), ("carla@acme.example", "contact_declined"));
    assert!(pending(&store).await.unwrap().is_empty());
    let audit = store.audit_log(1).await.unwrap();
    assert_eq!((audit[0].2.as_str(), audit[0].4.as_str()), ("agent:dana", "contact_request_declined"));
    store.close().await;
});

both_backends!(an_undecided_request_expires_and_the_requester_is_told, |url: String| async move {
    let (store, settings, engine) = setup(&url).await;
    let token = request(&engine, &store).await;
    let asked = pending(&store).await.unwrap()[0].created_at;
    let ttl = settings.account.contact_request_ttl.as_millis() as i64;

    // Within the week nothing expires; after it the link no longer works,
    // even before the sweep has run.
    assert_eq!(expire_due(&store, &settings, asked + ttl - 1).await.unwrap(), 0);
    assert_eq!(
        decide(&store, &settings, Decider::Link { token: token.clone() }, true, asked + ttl + 1).await,
        Err(DecisionError::NotPending)
    );
    assert_eq!(expire_due(&store, &settings, asked + ttl + 1).await.unwrap(), 1);
    assert_eq!(expire_due(&store, &settings, asked + ttl + 2).await.unwrap(), 0, "once");
    assert!(pending(&store).await.unwrap().is_empty());
    let (to, template, _) = mails(&store).await.pop().unwrap();
    assert_eq!((to.as_str(), template.as_str()), ("carla@acme.example", "contact_expired"));
    // Nothing brings it back.
    assert_eq!(
        decide(&store, &settings, Decider::Link { token }, true, asked + 1).await,
        Err(DecisionError::NotPending)
    );
    assert!(Directory::new(store.clone()).contact_by_email("carla@acme.example").await.unwrap().is_none());
    store.close().await;
});
