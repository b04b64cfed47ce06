//! The Discord channel against a Discord stand-in (tests/discord/): the real
//! serenity client on loopback, its REST calls recorded and asserted on,
//! gateway events from fixtures shaped like Discord's.

mod common;
#[path = "discord/fixtures.rs"]
mod fixtures;
#[path = "discord/stand_in.rs"]
mod stand_in;

use std::{sync::atomic::AtomicU64, time::Duration};

use fixtures::*;
use frontdesk::{app::App, config::Settings, store::Store};
use serde_json::{json, Value};
use stand_in::{Call, StandIn, GUILD, TOKEN};

/// frontdesk's Discord channel on a fresh store, connected to a stand-in.
struct Bot {
    discord: StandIn,
    app: App,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    ids: AtomicU64,
    _data: tempfile::TempDir,
}

/// A directory with one big company (30 contacts: a select menu over two
/// pages) and a small one.
fn write_directory(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("companies.csv"),
        "org_id,name,street,city,region,postal_code,country,phone\n\
         ORG-2001,Bigcorp Industries,Hauptstrasse 1,Berlin,,10115,DE,030 901820\n\
         ORG-2002,Smallco,1 Main St,Springfield,IL,62701,US,+1 217 555 0100\n",
    )
    .unwrap();
    let mut contacts = String::from("org_id,username,first_name,last_name,email,phone,role\n");
    for i in 1..=30 {
        contacts.push_str(&format!("ORG-2001,user{i:02},First{i:02},Last{i:02},person{i:02}@bigcorp.example,,user\n"));
    }
    contacts.push_str("ORG-2002,alee,Ann,Lee,ann.lee@smallco.example,,admin\n");
    std::fs::write(dir.join("contacts.csv"), contacts).unwrap();
    std::fs::write(dir.join("contracts.csv"), "contract_number,org_id,admin_username\n").unwrap();
    std::fs::write(dir.join("licenses.csv"), "serial_number,org_id,product,machine_code\n").unwrap();
}

impl Bot {
    async fn start(database_url: Option<String>, tweak: impl FnOnce(&mut Settings)) -> Bot {
        let discord = StandIn::start().await;
        let env: Vec<(String, String)> = [
            ("FRONTDESK__DISCORD__GUILD_ID", GUILD.to_string()),
            ("FRONTDESK__DISCORD__SUPPORT_CHANNELS", SUPPORT.to_string()),
            ("FRONTDESK__DISCORD__AGENT_ROLES", AGENT_ROLE.to_string()),
            ("FRONTDESK__DISCORD__TOKEN", TOKEN.to_string()),
            ("FRONTDESK__DISCORD__API_URL", discord.api_url.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut settings = Settings::load_from(None, &env).expect("settings with [discord] from the environment");
        settings.engine.flows_dir = common::repo_path("flows").display().to_string();
        settings.database.url = database_url;
        tweak(&mut settings);
        let data = tempfile::tempdir().unwrap();
        let app = App::open(settings, data.path().to_path_buf()).await.expect("app");
        write_directory(&data.path().join("directory"));
        let report = frontdesk::directory::import::import_dir(
            &app.store,
            &data.path().join("directory"),
            &Default::default(),
            1,
        )
        .await
        .unwrap();
        assert!(!report.rejected(), "{:?}", report.files);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(frontdesk::channels::discord::run(app.engine.clone(), app.settings.clone(), stop_rx));
        discord.wait_call("command registration", |c| c.method == "PUT" && c.path.ends_with("/commands")).await;
        Bot { discord, app, stop, task, ids: AtomicU64::new(1), _data: data }
    }

    fn store(&self) -> &Store {
        &self.app.store
    }

    fn next_id(&self) -> u64 {
        960_000_000_000_000_000 + self.ids.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// A member writes in a channel of the guild (or, with `dm`, to the bot).
    async fn write(&self, who: &Value, channel: u64, text: &str, nick: Option<&str>) -> Value {
        let m = message(self.next_id(), channel, true, who.clone(), text, nick);
        self.discord.dispatch("MESSAGE_CREATE", m.clone()).await;
        m
    }

    /// Messages the bot posted in `channel`.
    fn posted(&self, channel: &str) -> Vec<Call> {
        let path = format!("/channels/{channel}/messages");
        self.discord.calls().into_iter().filter(|c| c.method == "POST" && c.path == path).collect()
    }

    /// Waits until the bot has posted `n` messages in `channel`.
    async fn wait_posted(&self, channel: &str, n: usize) -> Vec<Call> {
        let path = format!("/channels/{channel}/messages");
        self.discord
            .wait_calls(&format!("{n} messages in {channel}"), n, |c| c.method == "POST" && c.path == path)
            .await
    }

    /// The private thread the bot opened for the member, once it has.
    async fn thread_of(&self, member: u64) -> String {
        let add = self
            .discord
            .wait_call("the member added to a thread", |c| {
                c.method == "PUT" && c.path.ends_with(&format!("/thread-members/{member}"))
            })
            .await;
        add.path.split('/').nth(2).unwrap().to_string()
    }

    /// The member clicks `custom_id` (with `values` for a select menu) on a
    /// message the bot posted.
    async fn click(
        &self,
        who: &Value,
        channel: &str,
        posted: &Call,
        custom_id: &str,
        values: Option<Vec<String>>,
    ) -> u64 {
        let mut on = stand_in::message_object(
            self.next_id(),
            channel,
            stand_in::bot_user(),
            posted.body["content"].as_str().unwrap(),
        );
        on["components"] = posted.body["components"].clone();
        let id = self.next_id();
        let i = component(id, channel.parse().unwrap(), true, who, custom_id, values, on);
        self.discord.dispatch("INTERACTION_CREATE", i).await;
        id
    }

    async fn command(&self, who: &Value, roles: &[u64], sub: &str, options: Value) -> u64 {
        let id = self.next_id();
        self.discord.dispatch("INTERACTION_CREATE", command(id, SUPPORT, who, roles, sub, options)).await;
        id
    }

    /// The callback the bot answered an interaction with.
    async fn callback(&self, interaction: u64) -> Call {
        let prefix = format!("/interactions/{interaction}/");
        self.discord.wait_call("an interaction callback", |c| c.path.starts_with(&prefix)).await
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        self.app.store.close().await;
    }
}

/// The custom ids of a posted message's components, row by row.
fn custom_ids(call: &Call) -> Vec<String> {
    call.body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
        .collect()
}

/// Every message, callback and edit carried `allowed_mentions` with nothing
/// allowed; nothing sent to the public channel holds personal data.
fn assert_safe(calls: &[Call], personal: &[&str]) {
    for c in calls {
        let sends_content = matches!(c.method.as_str(), "POST" | "PATCH") && !c.body["content"].is_null()
            || !c.body["data"]["content"].is_null();
        if sends_content {
            let mentions = if c.body["data"].is_object() {
                &c.body["data"]["allowed_mentions"]
            } else {
                &c.body["allowed_mentions"]
            };
            assert_eq!(mentions["parse"], json!([]), "a message without allowed_mentions: {c:?}");
            assert!(mentions["users"] == json!([]) && mentions["roles"] == json!([]), "{c:?}");
        }
        assert_eq!(c.auth.as_deref(), Some(format!("Bot {TOKEN}").as_str()), "{c:?}");
        if c.path.starts_with(&format!("/channels/{SUPPORT}/")) {
            let text = c.body.to_string();
            for p in personal {
                assert!(
                    !text.to_lowercase().contains(&p.to_lowercase()),
                    "personal data {p:?} went to the public channel: {c:?}"
                );
            }
            assert!(!text.contains('•'), "a masked address went to the public channel: {c:?}");
        }
    }
}

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
    bot.store().flush().await;
    assert!(bot.store().undelivered_on("discord", i64::MAX, 10).await.unwrap().is_empty());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_recovers_their_login_with_buttons_and_a_select_menu_on_sqlite() {
    recovery_with_buttons_and_a_select_menu(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_recovers_their_login_with_buttons_and_a_select_menu_on_postgres() {
    let Some(db) = common::TestDb::postgres().await else { return };
    recovery_with_buttons_and_a_select_menu(Some(db.url.clone())).await;
}
