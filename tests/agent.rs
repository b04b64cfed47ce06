//! Flows started by an agent for a customer.

mod common;

use std::sync::Arc;

use frontdesk::{directory::import::import_dir, engine::Engine, store::Store};

/// A store at `url` holding the test directory, and an engine on it.
async fn engine_on(url: &str) -> (Store, Arc<frontdesk::config::Settings>, Engine) {
    let store = Store::open(url, 4).await.unwrap();
    import_dir(&store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1).await.unwrap();
    let settings = Arc::new(common::settings());
    let engine =
        Engine::builder(store.clone(), settings.clone()).effects(frontdesk::app::effects(&store, &settings)).build();
    (store, settings, engine)
}

both_backends!(a_flow_started_by_an_agent_is_audited_as_such, |url: String| async move {
    let (store, _, engine) = engine_on(&url).await;

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

both_backends!(an_agent_takes_over_writes_and_hands_back, |url: String| async move {
    let (store, settings, engine) = engine_on(&url).await;
    common::say(&engine, "ann", "I forgot my password").await;

    // Handing back what nobody handed off does nothing.
    let nothing = engine.hand_back(common::msg("ann", ""), "dana").await.unwrap();
    assert!(nothing.conversation_id.is_none() && nothing.messages.is_empty());

    let took = engine.take_over(common::msg("ann", ""), "dana").await.unwrap();
    assert_eq!(common::lines(&took), std::slice::from_ref(&settings.messages.taken_over));
    assert!(took.messages[0].message.is_private());
    // The assistant stays quiet while the agent holds the conversation.
    let quiet = engine.handle(common::msg("ann", "hello?")).await.unwrap();
    assert!(quiet.messages.is_empty(), "{:?}", common::lines(&quiet));
    let said = engine.agent_say(common::msg("ann", ""), "dana", "Hi Ann, I'm Dana.").await.unwrap();
    assert_eq!(common::lines(&said), ["Hi Ann, I'm Dana."]);

    let back = engine.hand_back(common::msg("ann", ""), "dana").await.unwrap();
    assert_eq!(common::lines(&back), std::slice::from_ref(&settings.messages.handed_back));
    assert!(engine.open_conversation("test", "ann").await.unwrap().is_none());
    let fresh = common::say(&engine, "ann", "I forgot my password").await;
    assert_eq!(fresh[0], "How would you like to find your company record?");

    // Saying something to a customer with no conversation opens one, held.
    engine.agent_say(common::msg("bob", ""), "dana", "Hello Bob").await.unwrap();
    assert_eq!(
        engine.open_conversation("test", "bob").await.unwrap().unwrap().status,
        frontdesk::store::Status::HandedOff
    );
    // A flow's own hand-off still tells the customer a person will come.
    common::say(&engine, "cy", "agent").await;
    assert_eq!(common::say(&engine, "cy", "hello?").await, std::slice::from_ref(&settings.messages.handed_off_waiting));

    let audit = store.audit_log(50).await.unwrap();
    let actions: Vec<&str> =
        audit.iter().rev().filter(|a| a.3.as_deref() == Some("dana")).map(|a| a.4.as_str()).collect();
    // Writing to Bob took his conversation over in the same turn.
    assert_eq!(actions, ["agent_took_over", "agent_wrote", "agent_handed_back", "agent_wrote"]);
    store.close().await;
});
