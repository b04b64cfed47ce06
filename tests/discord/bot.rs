//! The frontdesk side of the Discord tests: the real channel on a fresh store,
//! connected to a stand-in, and what the tests do and check through it.
#![allow(dead_code)]

use std::{sync::atomic::AtomicU64, time::Duration};

use frontdesk::{app::App, config::Settings, store::Store};
use serde_json::{json, Value};

use super::{
    common,
    fixtures::*,
    stand_in::{self, Call, StandIn, GUILD, TOKEN},
};

/// frontdesk's Discord channel on a fresh store, connected to a stand-in.
pub struct Bot {
    pub discord: StandIn,
    pub app: App,
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
    pub async fn start(database_url: Option<String>, tweak: impl FnOnce(&mut Settings)) -> Bot {
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

    pub fn store(&self) -> &Store {
        &self.app.store
    }

    pub fn next_id(&self) -> u64 {
        960_000_000_000_000_000 + self.ids.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// A member writes in a channel of the guild (or, with `dm`, to the bot).
    pub async fn write(&self, who: &Value, channel: u64, text: &str, nick: Option<&str>) -> Value {
        let m = message(self.next_id(), channel, true, who.clone(), text, nick);
        self.discord.dispatch("MESSAGE_CREATE", m.clone()).await;
        m
    }

    /// Messages the bot posted in `channel` (that Discord accepted).
    pub fn posted(&self, channel: &str) -> Vec<Call> {
        let path = format!("/channels/{channel}/messages");
        self.discord.calls().into_iter().filter(|c| c.method == "POST" && c.path == path && c.status < 300).collect()
    }

    /// Waits until the bot has posted `n` messages in `channel`.
    pub async fn wait_posted(&self, channel: &str, n: usize) -> Vec<Call> {
        let path = format!("/channels/{channel}/messages");
        let what = format!("{n} messages in {channel}");
        self.discord.wait_calls(&what, n, |c| c.method == "POST" && c.path == path && c.status < 300).await
    }

    /// Member `id` asks for help in the support channel; returns them, their
    /// private thread and the first question posted there.
    pub async fn begin(&self, id: u64) -> (Value, String, Call) {
        let member = user(id, "kim", None);
        self.write(&member, SUPPORT, "I forgot my password", None).await;
        let thread = self.thread_of(id).await;
        let first = self.wait_posted(&thread, 1).await.remove(0);
        (member, thread, first)
    }

    /// The private thread the bot opened for the member, once it has.
    pub async fn thread_of(&self, member: u64) -> String {
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
    pub async fn click(
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

    pub async fn command(&self, who: &Value, roles: &[u64], sub: &str, options: Value) -> u64 {
        let id = self.next_id();
        self.discord.dispatch("INTERACTION_CREATE", command(id, SUPPORT, who, roles, sub, options)).await;
        id
    }

    /// The callback the bot answered an interaction with.
    pub async fn callback(&self, interaction: u64) -> Call {
        let prefix = format!("/interactions/{interaction}/");
        self.discord.wait_call("an interaction callback", |c| c.path.starts_with(&prefix)).await
    }

    /// Stops the channel and starts it again against a new stand-in, as a
    /// restarted process would (nothing kept in memory but the engine's).
    pub async fn restart(mut self) -> Bot {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        let discord = StandIn::start().await;
        let mut settings = (*self.app.settings).clone();
        settings.discord.as_mut().unwrap().api_url = Some(discord.api_url.clone());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let run = frontdesk::channels::discord::run(self.app.engine.clone(), std::sync::Arc::new(settings), stop_rx);
        let task = tokio::spawn(run);
        discord.wait_call("command registration", |c| c.method == "PUT" && c.path.ends_with("/commands")).await;
        Bot { discord, stop, task, ..self }
    }

    /// Waits until every message the bot owes is marked delivered (the mark
    /// follows Discord's answer to the send).
    pub async fn settled(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            self.store().flush().await;
            let owed = self.store().undelivered_on("discord", 0, i64::MAX, 10).await.unwrap();
            if owed.is_empty() {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "still undelivered: {owed:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        self.app.store.close().await;
    }
}

/// The custom ids of a posted message's components, row by row.
pub fn custom_ids(call: &Call) -> Vec<String> {
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
pub fn assert_safe(calls: &[Call], personal: &[&str]) {
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

/// The audit log's actions of one agent (by_agent containing `who`).
pub async fn audited(store: &Store, who: &str) -> Vec<String> {
    store.flush().await;
    let log = store.audit_log(200).await.unwrap();
    log.iter().rev().filter(|a| a.3.as_deref().is_some_and(|b| b.contains(who))).map(|a| a.4.clone()).collect()
}
