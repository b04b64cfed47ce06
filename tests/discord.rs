//! The Discord channel against a Discord stand-in (tests/discord/): the real
//! serenity client on loopback, its REST calls recorded and asserted on,
//! gateway events from fixtures shaped like Discord's.

#[path = "discord/bot.rs"]
mod bot;
mod common;
#[path = "discord/fixtures.rs"]
mod fixtures;
#[path = "discord/stand_in.rs"]
mod stand_in;

use std::time::Duration;

use bot::{assert_safe, audited, custom_ids, Bot};
use fixtures::*;
use serde_json::json;
use stand_in::{Call, GUILD};

#[test]
fn fixtures_deserialize() {
    use serenity::all::{Interaction, Message};
    let who = user(1, "ann", Some("Ann"));
    let m: Message = serde_json::from_value(message(2, SUPPORT, true, who.clone(), "hi", Some("Annie"))).unwrap();
    assert_eq!(m.member.unwrap().nick.as_deref(), Some("Annie"));
    let posted = json!({ "content": "Pick", "components": [{ "type": 1, "components": [{ "type": 2, "style": 1, "label": "Yes", "custom_id": "fd:1:b:0" }] }] });
    let mut on = stand_in::message_object(3, "4", stand_in::bot_user(), "Pick");
    on["components"] = posted["components"].clone();
    let i: Interaction = serde_json::from_value(component(5, 4, true, &who, "fd:1:b:0", None, on.clone())).unwrap();
    assert!(matches!(i, Interaction::Component(c) if c.user.id.get() == 1 && c.message.components.len() == 1));
    let i: Interaction =
        serde_json::from_value(component(5, 4, false, &who, "fd:1:s", Some(vec!["3".into()]), on)).unwrap();
    assert!(matches!(i, Interaction::Component(_)));
    let i: Interaction =
        serde_json::from_value(command(6, SUPPORT, &who, &[AGENT_ROLE], "takeover", json!([member_opt(7)]))).unwrap();
    assert!(matches!(i, Interaction::Command(c) if c.data.options.len() == 1));
}

/// The whole recovery in Discord: buttons for the search kind, a typed user
/// name, a paged select menu for the name, the login mail in the outbox.
async fn recovery_with_buttons_and_a_select_menu(url: Option<String>) {
    let bot = Bot::start(url, |_| {}).await;
    let member = user(5001, "kimk", Some("Kim K"));
    bot.write(&member, SUPPORT, "I forgot my password", None).await;
    let thread = bot.thread_of(5001).await;
    let creation = bot.discord.calls().into_iter().find(|c| c.path == format!("/channels/{SUPPORT}/threads")).unwrap();
    assert_eq!((creation.body["type"].as_u64(), creation.body["invitable"].as_bool()), (Some(12), Some(false)));

    // The first question, with one button per search kind; a notice in public.
    let first = bot.wait_posted(&thread, 1).await;
    let ids = custom_ids(&first[0]);
    assert_eq!(ids.len(), 5, "{:?}", first[0].body);
    let notice = bot.wait_posted(&SUPPORT.to_string(), 1).await;
    assert!(notice[0].body["content"].as_str().unwrap().contains(&format!("<#{thread}>")), "{:?}", notice[0].body);

    // "User name" by button: the question updates in place, without buttons.
    let click = bot.click(&member, &thread, &first[0], &ids[0], None).await;
    let callback = bot.callback(click).await;
    assert_eq!(callback.body["type"], 7, "answered at once with an update: {:?}", callback.body);
    assert_eq!(callback.body["data"]["components"], json!([]));
    assert!(callback.body["data"]["content"].as_str().unwrap().ends_with("→ User name"), "{:?}", callback.body);
    let asked = bot.wait_posted(&thread, 2).await;
    assert!(asked[1].body["content"].as_str().unwrap().contains("user name"), "{:?}", asked[1].body);

    // The user name, typed in the private thread.
    bot.write(&member, thread.parse().unwrap(), "user27", None).await;
    let list = bot.wait_posted(&thread, 4).await;
    let menu_message = list.iter().rev().find(|c| !custom_ids(c).is_empty()).unwrap().clone();
    let ids = custom_ids(&menu_message);
    assert_eq!(ids[0].split(':').nth(2), Some("s"), "31 names make a select menu: {ids:?}");
    let options = menu_message.body["components"][0]["components"][0]["options"].as_array().unwrap().clone();
    assert_eq!(options.len(), 25);
    assert!(options.iter().all(|o| !o["label"].as_str().unwrap().contains("First27")), "page 1 holds names 1-25");

    // Next page, then the name.
    let next = ids.iter().find(|id| id.ends_with(":p:1")).unwrap().clone();
    let paged = bot.click(&member, &thread, &menu_message, &next, None).await;
    let page = bot.callback(paged).await;
    assert_eq!(page.body["type"], 7);
    let page_options = page.body["data"]["components"][0]["components"][0]["options"].as_array().unwrap().clone();
    let mine = page_options.iter().find(|o| o["label"].as_str().unwrap().starts_with("First27")).unwrap();
    let mut on_page = menu_message.clone();
    on_page.body["components"] = page.body["data"]["components"].clone();
    let chose =
        bot.click(&member, &thread, &on_page, &ids[0], Some(vec![mine["value"].as_str().unwrap().to_string()])).await;
    let chose = bot.callback(chose).await;
    assert!(chose.body["data"]["content"].as_str().unwrap().contains("→ First27"), "{:?}", chose.body);
    let sent = bot.wait_posted(&thread, 6).await;
    assert!(sent[4].body["content"].as_str().unwrap().contains("on its way"), "{:?}", sent[4].body);

    // The login mail is in the outbox, for the address on record.
    bot.store().flush().await;
    let mails = frontdesk::mail::outbox::entries(bot.store()).await.unwrap();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!((mails[0].to_addr.as_str(), mails[0].template.as_str()), ("person27@bigcorp.example", "login_info"));

    // Nothing personal in public, and nothing may mention anyone.
    assert_eq!(bot.posted(&SUPPORT.to_string()).len(), 1);
    assert_safe(&bot.discord.calls(), &["person", "bigcorp", "First", "Last2", "user27", "ORG-2001"]);
    // Everything was delivered.
    bot.settled().await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_recovers_their_login_with_buttons_and_a_select_menu_on_sqlite() {
    recovery_with_buttons_and_a_select_menu(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_recovers_their_login_with_buttons_and_a_select_menu_on_postgres() {
    let db = common::TestDb::postgres().await;
    recovery_with_buttons_and_a_select_menu(Some(db.url.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_commands_are_refused_without_the_role_and_drive_a_members_conversation() {
    let bot = Bot::start(None, |_| {}).await;
    // Registered for the guild, hidden from everyone but administrators
    // until the server grants the agent roles.
    let registered = bot.discord.calls().into_iter().find(|c| c.path.ends_with("/commands")).unwrap();
    assert_eq!(registered.path, format!("/applications/{}/guilds/{GUILD}/commands", stand_in::APP));
    assert_eq!(registered.body[0]["name"], "frontdesk");
    assert_eq!(registered.body[0]["default_member_permissions"], "0");
    let subs: Vec<&str> =
        registered.body[0]["options"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(subs, ["lookup", "start", "transcript", "takeover", "say", "handback"]);

    // Without an agent role: refused, privately, and audited.
    let eve = user(6001, "eve", None);
    let refused =
        bot.command(&eve, &[OTHER_ROLE], "lookup", json!([text("by", "username"), text("value", "alee")])).await;
    let refused = bot.callback(refused).await;
    assert_eq!((refused.body["type"].as_u64(), refused.body["data"]["flags"].as_u64()), (Some(4), Some(64)));
    assert_eq!(refused.body["data"]["content"], "This command is for the support team only.");
    assert_eq!(audited(bot.store(), "discord:6001").await, ["agent_command_refused"]);

    // An agent looks a company up: only they see it.
    let dana = user(7001, "dana", None);
    let lookup =
        bot.command(&dana, &[AGENT_ROLE], "lookup", json!([text("by", "username"), text("value", "ALEE")])).await;
    let lookup = bot.callback(lookup).await;
    assert_eq!(lookup.body["data"]["flags"], 64);
    let shown = lookup.body["data"]["content"].as_str().unwrap();
    assert!(shown.contains("Smallco (Org ID ORG-2002") && shown.contains("ann.lee@smallco.example"), "{shown}");

    // The agent starts a flow for a member: it opens in the member's thread.
    let kim = user(5002, "kim", None);
    let start =
        bot.command(&dana, &[AGENT_ROLE], "start", json!([text("flow", "find_company"), member_opt(5002)])).await;
    let thread = bot.thread_of(5002).await;
    let started = bot.callback(start).await;
    assert_eq!(started.body["data"]["flags"], 64);
    assert_eq!(started.body["data"]["content"], format!("Started find\\_company for <@5002> in <#{thread}>."));
    let asked = bot.wait_posted(&thread, 1).await;
    assert!(
        asked[0].body["content"].as_str().unwrap().starts_with("How would you like to find"),
        "{:?}",
        asked[0].body
    );
    // The member answers there.
    let ids = custom_ids(&asked[0]);
    bot.click(&kim, &thread, &asked[0], &ids[0], None).await;
    bot.wait_posted(&thread, 2).await;

    // The transcript shows the flow, who started it, and what was said.
    let t = bot.command(&dana, &[AGENT_ROLE], "transcript", json!([member_opt(5002)])).await;
    let t = bot.callback(t).await;
    let shown = t.body["data"]["content"].as_str().unwrap();
    assert!(shown.contains("flow find\\_company · waiting · started by dana (discord:7001)"), "{shown}");
    assert!(shown.contains("customer: 1"), "{shown}");

    // Take over: the assistant goes quiet; the agent writes through the bot.
    let take = bot.command(&dana, &[AGENT_ROLE], "takeover", json!([member_opt(5002)])).await;
    assert!(bot.callback(take).await.body["data"]["content"].as_str().unwrap().starts_with("You hold <@5002>"));
    let joined = bot.wait_posted(&thread, 3).await;
    assert!(joined[2].body["content"].as_str().unwrap().contains("has joined this conversation"));
    bot.write(&kim, thread.parse().unwrap(), "hello? is anyone there", None).await;
    let say =
        bot.command(&dana, &[AGENT_ROLE], "say", json!([member_opt(5002), text("text", "Yes, I'm *here*.")])).await;
    bot.callback(say).await;
    let said = bot.wait_posted(&thread, 4).await;
    assert_eq!(said[3].body["content"], "Yes, I'm \\*here\\*.", "the member's message got no bot answer in between");

    // Hand back: the member is with the assistant again.
    let back = bot.command(&dana, &[AGENT_ROLE], "handback", json!([member_opt(5002)])).await;
    assert!(bot.callback(back).await.body["data"]["content"].as_str().unwrap().starts_with("Handed <@5002>"));
    let back_msgs = bot.wait_posted(&thread, 5).await;
    assert!(back_msgs[4].body["content"].as_str().unwrap().contains("back with the account assistant"));
    let again = bot.command(&dana, &[AGENT_ROLE], "handback", json!([member_opt(5002)])).await;
    assert_eq!(
        bot.callback(again).await.body["data"]["content"],
        "No conversation of <@5002> is with the support team."
    );

    // A flow for an e-mail customer starts a mail thread.
    let mail = bot
        .command(&dana, &[AGENT_ROLE], "start", json!([text("flow", "self_help"), text("email", "Pat@Example.com")]))
        .await;
    assert!(bot.callback(mail).await.body["data"]["content"].as_str().unwrap().contains("by e-mail"));
    bot.store().flush().await;
    let mails = frontdesk::mail::outbox::entries(bot.store()).await.unwrap();
    assert_eq!(mails.iter().map(|m| m.to_addr.as_str()).collect::<Vec<_>>(), ["pat@example.com"]);

    assert_eq!(
        audited(bot.store(), "discord:7001").await,
        [
            "agent_lookup",
            "agent_started_flow",
            "agent_viewed_transcript",
            "agent_took_over",
            "agent_wrote",
            "agent_handed_back",
            "agent_started_flow"
        ]
    );
    assert_safe(&bot.discord.calls(), &["smallco", "ann.lee", "ORG-2002"]);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_and_text_never_mention_or_format() {
    let bot = Bot::start(None, |_| {}).await;
    let everyone = user(5003, "everyone", Some("@everyone"));
    bot.write(&everyone, SUPPORT, "hi", None).await;
    let notice = bot.wait_posted(&SUPPORT.to_string(), 1).await;
    let content = notice[0].body["content"].as_str().unwrap();
    assert!(content.starts_with("@\u{200B}everyone, I've answered you"), "{content}");

    let styled = user(5004, "styled", Some("plain"));
    bot.write(&styled, SUPPORT, "hi", Some("**Boss** <@5003> __x__ [link](https://evil.example)")).await;
    let notice = bot.wait_posted(&SUPPORT.to_string(), 2).await;
    let content = notice[1].body["content"].as_str().unwrap();
    assert!(
        content.starts_with("\\*\\*Boss\\*\\* \\<@5003\\> \\_\\_x\\_\\_ \\[link\\](https://evil.example), I've"),
        "{content}"
    );
    for c in bot.discord.calls().iter().filter(|c| c.method == "POST" && c.path.ends_with("/messages")) {
        let text = c.body["content"].as_str().unwrap();
        assert!(
            !text.contains("@everyone") && !text.replace("\\<", "").contains("<@"),
            "a mention could render: {text}"
        );
    }
    assert_safe(&bot.discord.calls(), &[]);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_drops_mid_conversation_and_the_session_resumes() {
    let bot = Bot::start(None, |_| {}).await;
    let (kim, thread, first) = bot.begin(5005).await;

    bot.discord.drop_connection();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while bot.discord.resumes() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the client did not resume");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bot.discord.identifies(), 1, "resumed, not identified again");

    // The conversation goes on over the resumed session.
    bot.click(&kim, &thread, &first, &custom_ids(&first)[0], None).await;
    let asked = bot.wait_posted(&thread, 2).await;
    assert!(asked[1].body["content"].as_str().unwrap().contains("user name"));
    bot.write(&kim, thread.parse().unwrap(), "alee", None).await;
    let found = bot.wait_posted(&thread, 4).await;
    assert!(found[2].body["content"].as_str().unwrap().contains("I found your company record"), "{:?}", found[2].body);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_or_interaction_delivered_twice_is_answered_once() {
    let bot = Bot::start(None, |_| {}).await;
    let kim = user(5006, "kim", None);
    let m = message(bot.next_id(), SUPPORT, true, kim.clone(), "I forgot my password", None);
    bot.discord.dispatch("MESSAGE_CREATE", m.clone()).await;
    let thread = bot.thread_of(5006).await;
    let first = bot.wait_posted(&thread, 1).await;
    bot.discord.dispatch("MESSAGE_CREATE", m).await;

    let mut on = stand_in::message_object(bot.next_id(), &thread, stand_in::bot_user(), "q");
    on["components"] = first[0].body["components"].clone();
    let click = component(bot.next_id(), thread.parse().unwrap(), true, &kim, &custom_ids(&first[0])[1], None, on);
    bot.discord.dispatch("INTERACTION_CREATE", click.clone()).await;
    bot.wait_posted(&thread, 2).await;
    bot.discord.dispatch("INTERACTION_CREATE", click).await;
    // A later message proves both duplicates were handled before it.
    bot.write(&kim, thread.parse().unwrap(), "help", None).await;
    let all = bot.wait_posted(&thread, 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bot.posted(&thread).len(), 4, "{:#?}", all.iter().map(|c| &c.body["content"]).collect::<Vec<_>>());
    // Another click on the first, answered question is stale: said so, nothing chosen.
    bot.click(&kim, &thread, &first[0], &custom_ids(&first[0])[3], None).await;
    let stale = bot.wait_posted(&thread, 5).await;
    let updated = bot.discord.calls().into_iter().rfind(|c| c.path.contains("/callback")).unwrap();
    assert_eq!(updated.body["data"]["content"], first[0].body["content"], "no choice shown for a stale click");
    assert_eq!(stale[4].body["content"], "That question was already answered, so I ignored that reply.");
    assert_eq!(bot.posted(&SUPPORT.to_string()).len(), 1, "one public notice");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_errors_are_retried_then_reported_and_nothing_is_lost() {
    let bot = Bot::start(None, |_| {}).await;
    let kim = user(5007, "kim", None);
    // Discord fails twice: the third try gets through.
    bot.discord.fail("POST", "/messages", 502, 0, 2);
    bot.write(&kim, SUPPORT, "I forgot my password", None).await;
    let thread = bot.thread_of(5007).await;
    let first = bot.wait_posted(&thread, 1).await;
    assert!(first[0].body["content"].as_str().unwrap().starts_with("How would you like"));
    let tries = bot.discord.calls().into_iter().filter(|c| c.path == format!("/channels/{thread}/messages")).count();
    assert_eq!(tries, 3);

    // Discord fails every try of the next reply: the member is told, the
    // reply stays owed, and goes out before the next turn's.
    bot.discord.fail("POST", &format!("/channels/{thread}/messages"), 500, 0, 3);
    bot.click(&kim, &thread, &first[0], &custom_ids(&first[0])[0], None).await;
    let told = bot.wait_posted(&thread, 2).await;
    let sorry = "Sorry, I could not deliver my answer just now. I'll try again with your next message.";
    assert_eq!(told[1].body["content"], sorry);
    bot.store().flush().await;
    assert_eq!(bot.store().undelivered_on("discord", 0, i64::MAX, 10).await.unwrap().len(), 1);
    bot.write(&kim, thread.parse().unwrap(), "alee", None).await;
    let after = bot.wait_posted(&thread, 5).await;
    let texts: Vec<&str> = after[2..].iter().map(|c| c.body["content"].as_str().unwrap()).collect();
    assert!(texts[0].contains("user name"), "the owed question first: {texts:?}");
    assert!(texts[1].contains("I found your company record"), "{texts:?}");
    bot.settled().await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_dms_are_reported_in_public_and_slow_turns_are_acknowledged_first() {
    let bot = Bot::start(None, |s| {
        let d = s.discord.as_mut().unwrap();
        d.private = frontdesk::config::DiscordPrivate::Dm;
        d.ack_after = Duration::ZERO;
    })
    .await;
    let kim = user(5008, "kim", None);
    bot.discord.fail("POST", "/channels/", 403, 50007, 1);
    bot.discord.fail("POST", "/users/@me/channels", 403, 50007, 0);
    bot.write(&kim, SUPPORT, "I forgot my password", None).await;
    let told = bot
        .discord
        .wait_call("the DM refusal in public", |c| {
            c.path == format!("/channels/{SUPPORT}/messages")
                && c.body["content"].as_str().is_some_and(|t| t.contains("direct message"))
        })
        .await;
    assert!(told.body["content"].as_str().unwrap().starts_with("I could not send you a direct message"));

    // DMs open again: the owed question comes first, in the DM.
    bot.write(&kim, SUPPORT, "help", None).await;
    let dm = bot.discord.wait_call("a DM channel", |c| c.path == "/users/@me/channels").await;
    assert_eq!(dm.body["recipient_id"], "5008");
    let dm_channel = bot
        .discord
        .wait_call("a message in the DM", |c| {
            c.method == "POST" && c.path.ends_with("/messages") && !c.path.contains(&SUPPORT.to_string())
        })
        .await
        .path
        .split('/')
        .nth(2)
        .unwrap()
        .to_string();
    let sent = bot.wait_posted(&dm_channel, 3).await;
    assert!(sent[0].body["content"].as_str().unwrap().starts_with("How would you like"), "{:?}", sent[0].body);
    assert!(sent[1].body["content"].as_str().unwrap().starts_with("I'm the account assistant"), "{:?}", sent[1].body);
    assert!(bot.posted(&SUPPORT.to_string()).last().unwrap().body["content"]
        .as_str()
        .unwrap()
        .contains("direct message"));

    // With no time budget the click is acknowledged first, the question
    // edited afterwards.
    let click = bot.click(&kim, &dm_channel, &sent[2], &custom_ids(&sent[2])[0], None).await;
    assert_eq!(bot.callback(click).await.body["type"], 6);
    let edit = bot
        .discord
        .wait_call("the deferred edit", |c| c.method == "PATCH" && c.path.contains(&format!("token-{click}")))
        .await;
    assert_eq!(edit.body["components"], json!([]));
    // An agent's command is deferred (privately) the same way, then edited.
    let lookup = bot
        .command(
            &user(7004, "dana", None),
            &[AGENT_ROLE],
            "lookup",
            json!([text("by", "org_id"), text("value", "ORG-2002")]),
        )
        .await;
    let deferred = bot.callback(lookup).await;
    assert_eq!((deferred.body["type"].as_u64(), deferred.body["data"]["flags"].as_u64()), (Some(5), Some(64)));
    let edit = bot
        .discord
        .wait_call("the command's edit", |c| c.method == "PATCH" && c.path.contains(&format!("token-{lookup}")))
        .await;
    assert!(edit.body["content"].as_str().unwrap().starts_with("Smallco (Org ID ORG-2002"), "{:?}", edit.body);
    assert_safe(&bot.discord.calls(), &[]);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owed_replies_expiry_notices_and_hand_offs_reach_the_right_place() {
    const STAFF: u64 = 910_000_000_000_000_099;
    let bot = Bot::start(None, |s| {
        s.engine.idle_expiry = Duration::from_secs(2);
        let d = s.discord.as_mut().unwrap();
        d.redeliver_every = Duration::from_millis(100);
        d.redeliver_after = Duration::from_millis(50);
        d.agent_channel = Some(STAFF);
    })
    .await;
    // Every try of the first reply fails; the member is told in public, and
    // the sweep delivers the reply without waiting for them to write again.
    let kim = user(5009, "kim", None);
    bot.discord.fail("POST", "/messages", 500, 0, 3);
    bot.write(&kim, SUPPORT, "I forgot my password", None).await;
    let thread = bot.thread_of(5009).await;
    let public = bot.wait_posted(&SUPPORT.to_string(), 1).await;
    assert!(public[0].body["content"].as_str().unwrap().starts_with("Sorry, I could not deliver"));
    let owed = bot.wait_posted(&thread, 1).await;
    assert!(owed[0].body["content"].as_str().unwrap().starts_with("How would you like"));

    // Left unanswered, the conversation expires; the notice goes out too.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(bot.app.engine.expire_idle().await.unwrap(), 1);
    let closed = bot.wait_posted(&thread, 2).await;
    assert!(closed[1].body["content"].as_str().unwrap().starts_with("This conversation was closed"));

    // Asking for a person tells the staff channel where, and nothing else.
    bot.write(&kim, thread.parse().unwrap(), "agent", None).await;
    let told = bot.wait_posted(&STAFF.to_string(), 1).await;
    assert_eq!(told[0].body["content"], format!("<@5009> needs a person (customer asked for a person): <#{thread}>"));

    // The support team talking in the support channel is not a customer.
    let mut staff_talk = message(bot.next_id(), SUPPORT, true, user(7002, "dana", None), "I'll look into it", None);
    staff_talk["member"]["roles"] = json!([AGENT_ROLE.to_string()]);
    bot.discord.dispatch("MESSAGE_CREATE", staff_talk).await;
    bot.write(&user(5010, "lee", None), SUPPORT, "hello", None).await;
    bot.thread_of(5010).await;
    bot.wait_posted(&SUPPORT.to_string(), 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!bot.discord.calls().iter().any(|c| c.path.ends_with("/thread-members/7002")), "no conversation for staff");
    // Nor is anyone talking in other channels of the server.
    bot.write(&user(5013, "sam", None), ELSEWHERE, "I forgot my password", None).await;
    bot.write(&user(5013, "sam", None), ELSEWHERE, "hello?", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!bot.discord.calls().iter().any(|c| c.path.contains(&ELSEWHERE.to_string()) || c.path.ends_with("/5013")));
    assert_eq!(bot.posted(&SUPPORT.to_string()).len(), 2);
    bot.settled().await;
    assert_safe(&bot.discord.calls(), &[]);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_conversation_continues_in_the_same_thread() {
    let bot = Bot::start(None, |_| {}).await;
    let (kim, thread, first) = bot.begin(5011).await;

    let bot = bot.restart().await;
    bot.click(&kim, &thread, &first, &custom_ids(&first)[0], None).await;
    let asked = bot.wait_posted(&thread, 1).await;
    assert!(asked[0].body["content"].as_str().unwrap().contains("user name"));
    // A message in the support channel goes to the same thread, not a new one.
    bot.write(&kim, SUPPORT, "alee", None).await;
    let found = bot.wait_posted(&thread, 3).await;
    assert!(found[1].body["content"].as_str().unwrap().contains("I found your company record"));
    assert!(!bot.discord.calls().iter().any(|c| c.path.ends_with("/threads")), "no second thread");
    let rejoin = format!("/channels/{thread}/thread-members/5011");
    assert!(bot.discord.calls().iter().any(|c| c.path == rejoin), "writing in public adds them to their thread again");
    let notice = bot.wait_posted(&SUPPORT.to_string(), 1).await;
    assert!(notice[0].body["content"].as_str().unwrap().contains(&format!("<#{thread}>")));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_cannot_be_added_yet_keeps_one_thread() {
    let bot = Bot::start(None, |_| {}).await;
    let dana = user(7003, "dana", None);
    // Discord refuses to add the member (they have not joined the server yet).
    bot.discord.fail("PUT", "/thread-members/5012", 404, 10007, 1);
    let start =
        bot.command(&dana, &[AGENT_ROLE], "start", json!([text("flow", "find_company"), member_opt(5012)])).await;
    let answer = bot.callback(start).await;
    let told = answer.body["data"]["content"].as_str().unwrap();
    assert_eq!(
        told,
        "Discord refused a call (stand-in failure). Anything already started goes out once the member can be reached."
    );
    // They write in the support channel: the same thread, the owed question first.
    bot.write(&user(5012, "lee", None), SUPPORT, "hello", None).await;
    let threads: Vec<Call> = bot.discord.calls().into_iter().filter(|c| c.path.ends_with("/threads")).collect();
    assert_eq!(threads.len(), 1);
    let thread = bot
        .discord
        .wait_call("the member added", |c| c.path.ends_with("/thread-members/5012") && c.status == 204)
        .await;
    let thread = thread.path.split('/').nth(2).unwrap().to_string();
    let sent = bot.wait_posted(&thread, 2).await;
    assert!(sent[0].body["content"].as_str().unwrap().starts_with("How would you like"), "{:?}", sent[0].body);
    bot.stop().await;
}

/// `frontdesk serve` itself, configured by the environment alone, answers a
/// member and stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_discord_channel_from_the_environment() {
    let discord = stand_in::StandIn::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("--data")
        .arg(data.path())
        .arg("serve")
        .env("FRONTDESK__HTTP__LISTEN", "127.0.0.1:0")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("FRONTDESK__DISCORD__GUILD_ID", GUILD.to_string())
        .env("FRONTDESK__DISCORD__SUPPORT_CHANNELS", SUPPORT.to_string())
        .env("FRONTDESK__DISCORD__AGENT_ROLES", AGENT_ROLE.to_string())
        .env("FRONTDESK__DISCORD__TOKEN", stand_in::TOKEN)
        .env("FRONTDESK__DISCORD__API_URL", &discord.api_url)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    discord.wait_call("command registration", |c| c.method == "PUT" && c.path.ends_with("/commands")).await;
    discord
        .dispatch(
            "MESSAGE_CREATE",
            message(970_000_000_000_000_001, SUPPORT, true, user(5020, "kim", None), "hi", None),
        )
        .await;
    let added = discord.wait_call("a private thread", |c| c.path.ends_with("/thread-members/5020")).await;
    let thread = added.path.split('/').nth(2).unwrap().to_string();
    let answer = discord.wait_call("an answer", |c| c.path == format!("/channels/{thread}/messages")).await;
    assert!(!answer.body["content"].as_str().unwrap().is_empty());

    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("serve stops").unwrap();
    assert!(status.success(), "{status:?}");
}

/// Two instances on one PostgreSQL store: one runs the gateway, the other
/// stands by and takes over when the first stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_stands_by_until_the_first_goes() {
    let db = common::TestDb::postgres().await;
    let first = Bot::start(Some(db.url.clone()), |_| {}).await;
    let data = tempfile::tempdir().unwrap();
    let second = frontdesk::app::App::open((*first.app.settings).clone(), data.path().to_path_buf()).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = frontdesk::channels::discord::run(second.engine.clone(), second.settings.clone(), stopped);
    let task = tokio::spawn(run);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(first.discord.identifies(), 1, "the second instance stands by");

    let discord = first.discord.clone();
    first.stop().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while discord.identifies() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the second instance did not take over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    discord
        .dispatch(
            "MESSAGE_CREATE",
            message(970_000_000_000_000_002, SUPPORT, true, user(5030, "kim", None), "hi", None),
        )
        .await;
    discord.wait_call("the second instance answering", |c| c.path.ends_with("/thread-members/5030")).await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    second.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dms_what_a_member_writes_to_the_support_team_reaches_the_staff_channel() {
    const STAFF: u64 = 910_000_000_000_000_098;
    const DM: u64 = 910_000_000_000_000_097;
    let bot = Bot::start(None, |s| {
        let d = s.discord.as_mut().unwrap();
        d.private = frontdesk::config::DiscordPrivate::Dm;
        d.agent_channel = Some(STAFF);
    })
    .await;
    let dana = user(7005, "dana", None);
    let take = bot.command(&dana, &[AGENT_ROLE], "takeover", json!([member_opt(5040)])).await;
    bot.callback(take).await;
    let kim = user(5040, "kim", None);
    bot.discord.dispatch("MESSAGE_CREATE", message(bot.next_id(), DM, false, kim, "my **serial** is ABC", None)).await;
    let relayed = bot.wait_posted(&STAFF.to_string(), 1).await;
    assert_eq!(relayed[0].body["content"], "<@5040> wrote (with the support team): my \\*\\*serial\\*\\* is ABC");
    assert!(bot.posted(&DM.to_string()).is_empty(), "the assistant kept quiet");

    // A member who asked for a person: the staff channel is told how to reach
    // them, and what they write while waiting is relayed too.
    const LEE_DM: u64 = 910_000_000_000_000_096;
    let lee = user(5041, "lee", None);
    bot.discord.dispatch("MESSAGE_CREATE", message(bot.next_id(), LEE_DM, false, lee.clone(), "agent", None)).await;
    let told = bot.wait_posted(&STAFF.to_string(), 2).await;
    let notice = told[1].body["content"].as_str().unwrap();
    assert!(
        notice.starts_with("<@5041> needs a person (customer asked for a person). They write to the bot in DMs"),
        "{notice}"
    );
    bot.discord.dispatch("MESSAGE_CREATE", message(bot.next_id(), LEE_DM, false, lee, "still there?", None)).await;
    let relayed = bot.wait_posted(&STAFF.to_string(), 3).await;
    assert_eq!(relayed[2].body["content"], "<@5041> wrote (with the support team): still there?");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bot.posted(&STAFF.to_string()).len(), 3, "the hand-off turn itself is announced, not relayed");
    bot.stop().await;
}

/// A click that must wait for the member's previous replies (Discord is slow
/// to take them) is acknowledged inside the window, not after the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_waiting_for_slow_sends_is_acknowledged_first() {
    let bot = Bot::start(None, |s| s.discord.as_mut().unwrap().ack_after = Duration::from_millis(500)).await;
    let (kim, thread, first) = bot.begin(5050).await;
    // Typing "help" re-asks the question; Discord takes 3 s for each of those replies.
    bot.discord.delay("POST", &format!("/channels/{thread}/messages"), Duration::from_secs(3), 2);
    bot.write(&kim, thread.parse().unwrap(), "help", None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let click = bot.click(&kim, &thread, &first, &custom_ids(&first)[0], None).await;
    assert_eq!(bot.callback(click).await.body["type"], 6, "acknowledged while the previous turn was still sending");
    let asked = bot.wait_posted(&thread, 4).await;
    assert!(asked[3].body["content"].as_str().unwrap().contains("user name"), "{:?}", asked[3].body);
    bot.stop().await;
}
