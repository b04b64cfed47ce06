//! Flows started by an agent for a customer.

mod common;

use std::sync::Arc;

use frontdesk::{directory::import::import_dir, engine::Engine, store::Store};

both_backends!(a_flow_started_by_an_agent_is_audited_as_such, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    import_dir(&store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let settings = Arc::new(common::settings());
    let engine =
        Engine::builder(store.clone(), settings.clone()).effects(frontdesk::app::effects(&store, &settings)).build();

    let reply = engine.start_for("test", "ann", "find_company", "dana").await.unwrap();
    assert_eq!(common::lines(&reply)[0], "How would you like to find your company record?");
    // The customer sees it in their conversation and answers there.
    let pending = engine.pending_deliveries("test", "ann").await.unwrap();
    assert_eq!(pending.len(), 1);
    engine.delivered(&pending).await.unwrap();
    common::say(&engine, "ann", "1").await;
    let found = common::say(&engine, "ann", "alee").await;
    assert!(found[0].starts_with("I found your company record"), "{found:?}");
    common::say(&engine, "ann", "1").await;

    let audit = store.audit_log(20).await.unwrap();
    let actions: Vec<(&str, Option<&str>)> = audit.iter().map(|a| (a.4.as_str(), a.3.as_deref())).collect();
    for action in ["agent_started_flow", "search", "contact_list_shown", "login_info_sent"] {
        assert!(actions.contains(&(action, Some("dana"))), "{action} not audited as started by dana: {actions:?}");
    }

    // An unknown flow is refused and changes nothing.
    assert!(engine.start_for("test", "bob", "no_such_flow", "dana").await.is_err());
    assert!(engine.open_conversation("test", "bob").await.unwrap().is_none());
    store.close().await;
});
