//! The Slack channel against a Slack stand-in on loopback
//! (`tests/slack/stand_in.rs`): Socket Mode and the Events API, customers in
//! a support channel and in direct messages, agents by `/frontdesk`.

mod common;
#[path = "slack/stand_in.rs"]
mod stand_in;

use std::time::Duration;

use frontdesk::{app::App, config::Settings, directory::import::import_dir};
use serde_json::{json, Value};
use stand_in::{Call, StandIn};
use tokio::sync::watch;

const SUPPORT: &str = "C0SUPPORT";
const STAFF: &str = "C0STAFF";
const CUSTOMER: &str = "U0CUSTOMER";
const AGENT: &str = "U0AGENT";
const SECRET: &str = "stand-in-signing-secret";

/// A directory with one company of six contacts (a contact list of seven
/// choices: a select menu), beside the fixture directory.
fn directory() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("companies.csv"),
        "org_id,name,street,city,region,postal_code,country,phone\n\
         ORG-7001,Bigco Systems AG,Bahnhofstrasse 1,Zurich,ZH,8001,CH,+41 44 668 1800\n",
    )
    .unwrap();
    let mut contacts = String::from("org_id,username,first_name,last_name,email,phone,role\n");
    for (i, name) in ["Ada", "Bea", "Cem", "Dora", "Emil", "Finn"].iter().enumerate() {
        let role = if i == 0 { "admin" } else { "user" };
        contacts.push_str(&format!(
            "ORG-7001,{}{i},{name},Muster,{}@bigco.example,,{role}\n",
            name.to_lowercase(),
            name.to_lowercase()
        ));
    }
    std::fs::write(dir.path().join("contacts.csv"), contacts).unwrap();
    dir
}

/// An app with the Slack channel running against the stand-in.
struct Running {
    app: App,
    slack: StandIn,
    /// The HTTP server's address (Events API mode).
    base: Option<String>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _data: tempfile::TempDir,
}

fn env(slack: &StandIn, mode: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("FRONTDESK__SLACK__MODE", mode),
        ("FRONTDESK__SLACK__SUPPORT_CHANNELS", SUPPORT),
        ("FRONTDESK__SLACK__AGENT_GROUPS", stand_in::AGENTS),
        ("FRONTDESK__SLACK__AGENT_CHANNEL", STAFF),
        ("FRONTDESK__SLACK__API_URL", &slack.api_url),
        ("FRONTDESK__SLACK__BOT_TOKEN", stand_in::BOT_TOKEN),
        ("FRONTDESK__SLACK__APP_TOKEN", stand_in::APP_TOKEN),
        ("FRONTDESK__SLACK__SIGNING_SECRET", SECRET),
        ("FRONTDESK__SLACK__AGENT_CACHE", "1s"),
        ("FRONTDESK__SLACK__REDELIVER_EVERY", "1s"),
        ("FRONTDESK__SLACK__REDELIVER_AFTER", "1s"),
        ("FRONTDESK__HTTP__LISTEN", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

impl Running {
    async fn start(database: &str, slack: StandIn, mode: &str, extra: &[(&str, &str)]) -> Running {
        let data = tempfile::tempdir().unwrap();
        let mut settings = Settings::load_from(None, &env(&slack, mode, extra)).expect("settings");
        settings.engine.flows_dir = common::repo_path("flows").display().to_string();
        settings.database.url = Some(database.to_string());
        let listener = frontdesk::http::bind(&settings.http).await.unwrap();
        settings.served_at(listener.local_addr().unwrap());
        let base = settings.http.public_url.clone();
        let app = App::open(settings, data.path().to_path_buf()).await.unwrap();
        let (stop, stopped) = watch::channel(false);
        let channels = frontdesk::channels::configured(&app).unwrap();
        let routes: Vec<axum::Router> = channels.iter().filter_map(|c| c.routes()).collect();
        let events = !routes.is_empty();
        let mut tasks = Vec::new();
        for channel in channels.into_iter().filter(|c| c.name() == "slack") {
            let stop = stopped.clone();
            tasks.push(tokio::spawn(async move { channel.run(stop).await.expect("the Slack channel ran") }));
        }
        let state = frontdesk::http::HttpState::new(&app);
        tasks.push(tokio::spawn(frontdesk::http::serve(listener, state, routes, stopped, Duration::from_secs(1))));
        if !events {
            slack.wait_connections(1).await;
        }
        Running { app, slack, base: events.then_some(base), stop, tasks, _data: data }
    }

    async fn with_directories(database: &str, mode: &str, extra: &[(&str, &str)]) -> Running {
        let slack = StandIn::start().await;
        slack.set_agents(&[AGENT]);
        let running = Running::start(database, slack, mode, extra).await;
        for dir in [common::repo_path("tests/fixtures/directory"), directory().path().to_path_buf()] {
            let report = import_dir(&running.app.store, &dir, &Default::default(), 1).await.unwrap();
            assert!(!report.rejected());
        }
        running
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.app.store.close().await;
    }
}

/// Every `action_id` of a call's blocks.
fn actions(call: &Call) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(id)) = m.get("action_id") {
                    out.push(id.clone());
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&call.body["blocks"], &mut out);
    out
}

/// The messages posted to the member's DM, in order.
fn dm_posts(slack: &StandIn) -> Vec<Call> {
    slack.calls_of("chat.postMessage").into_iter().filter(|c| c.channel().starts_with('D')).collect()
}

/// Waits for the `n`-th DM post (1-based) and returns it.
async fn nth_dm(slack: &StandIn, n: usize, what: &str) -> Call {
    slack.wait_calls(what, n, |c| c.method == "chat.postMessage" && c.channel().starts_with('D')).await;
    dm_posts(slack).swap_remove(n - 1)
}

/// Waits for a DM post that shows `needle`, and returns it.
async fn dm_showing(slack: &StandIn, needle: &str) -> Call {
    slack
        .wait_call(needle, |c| {
            c.method == "chat.postMessage" && c.channel().starts_with('D') && c.shown().contains(needle)
        })
        .await
}

/// No public post shows anything of the directory: only fixed notices.
fn assert_nothing_personal_in_public(slack: &StandIn) {
    for call in slack.calls_of("chat.postMessage").iter().filter(|c| c.channel() == SUPPORT) {
        let shown = call.shown();
        for personal in ["@", "•", "Muster", "Ann", "Lee", "bigco", "acme", "ORG-"] {
            assert!(!shown.contains(personal), "a public post shows {personal:?}: {shown}");
        }
    }
}

/// The customer recovers their login: a message in the support channel,
/// a button, a typed user name, a pick in a select menu.
async fn recover_by_buttons_and_a_select(r: &Running, send: impl Fn(Value) + Copy, click: impl Fn(Value) + Copy) {
    let slack = &r.slack;
    let ts = slack.ts();
    send(stand_in::message(CUSTOMER, SUPPORT, &ts, "I forgot my password"));
    let first = nth_dm(slack, 1, "the first question in the member's DM").await;
    assert!(first.shown().contains("How would you like to find your company record?"), "{}", first.shown());
    let buttons = actions(&first);
    assert_eq!(buttons.len(), 5, "five choices are buttons: {buttons:?}");
    let notice = slack.wait_call("the public notice", |c| c.channel() == SUPPORT).await;
    assert_eq!(notice.body["thread_ts"], ts, "the notice answers in the message's thread");
    let dm = first.channel().to_string();

    click(stand_in::click(CUSTOMER, &dm, &first.ts, &buttons[0], "0", &slack.response_url("c1")));
    let asked = nth_dm(slack, 2, "the user name question").await;
    assert!(asked.shown().contains("user name"), "{}", asked.shown());
    slack.wait_call("the clicked question updated", |c| c.method == "chat.update").await;

    send(stand_in::message(CUSTOMER, &dm, &slack.ts(), "ada0"));
    let list = dm_showing(slack, "static_select").await;
    let select: Vec<String> = actions(&list).into_iter().filter(|a| a.ends_with(":s")).collect();
    assert_eq!(select.len(), 1, "seven contacts are a select menu: {}", list.shown());
    assert!(list.shown().contains("static_select") && list.shown().contains("Cem M."), "{}", list.shown());

    click(stand_in::click(CUSTOMER, &dm, &list.ts, &select[0], "2", &slack.response_url("c2")));
    let sent = dm_showing(slack, "on its way").await;
    assert!(sent.shown().contains("on its way"), "{}", sent.shown());
    let mails = frontdesk::mail::outbox::entries(&r.app.store).await.unwrap();
    let login = mails.iter().find(|m| m.template == "login_info").expect("the login mail is in the outbox");
    assert_eq!(login.to_addr, "cem@bigco.example");
    assert_nothing_personal_in_public(slack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_socket_mode_recovery_with_buttons_and_a_select_menu() {
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "socket", &[]).await;
    let n = std::sync::atomic::AtomicUsize::new(0);
    let next = || format!("env-{}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    let slack = r.slack.clone();
    let (s1, s2) = (slack.clone(), slack.clone());
    recover_by_buttons_and_a_select(&r, |e| s1.push(&next(), e, 0), |c| s2.interact(&next(), c)).await;
    // Every envelope was acknowledged.
    slack.ack("env-0").await;
    r.stop().await;
}

/// Signs a request body as Slack does, at `ts`.
fn sign(body: &str, ts: i64, secret: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Posts a signed request to one of the Events API routes.
async fn post_signed(
    base: &str,
    route: &str,
    body: String,
    content_type: &str,
    ts: i64,
    secret: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{route}"))
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sign(&body, ts, secret))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn event(base: &str, event: Value) -> u16 {
    let body = stand_in::callback(event).to_string();
    post_signed(base, "/slack/events", body, "application/json", now(), SECRET).await.status().as_u16()
}

async fn interaction(base: &str, payload: Value) -> u16 {
    let body =
        format!("payload={}", url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>());
    post_signed(base, "/slack/interactivity", body, "application/x-www-form-urlencoded", now(), SECRET)
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_events_api_recovery_over_signed_http() {
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "events", &[]).await;
    let base = r.base.clone().unwrap();

    // Slack's URL check.
    let body = json!({ "type": "url_verification", "token": "t", "challenge": "ch-123" }).to_string();
    let verified = post_signed(&base, "/slack/events", body, "application/json", now(), SECRET).await;
    assert_eq!(verified.status(), 200);
    assert_eq!(verified.json::<Value>().await.unwrap()["challenge"], "ch-123");

    // A wrong signature and a stale timestamp are refused and change nothing.
    let forged =
        stand_in::callback(stand_in::message(CUSTOMER, SUPPORT, &r.slack.ts(), "I forgot my password")).to_string();
    let wrong = post_signed(&base, "/slack/events", forged.clone(), "application/json", now(), "not-the-secret").await;
    let stale = post_signed(&base, "/slack/events", forged, "application/json", now() - 600, SECRET).await;
    let unsigned = reqwest::Client::new().post(format!("{base}/slack/events")).body("{}").send().await.unwrap();
    assert_eq!((wrong.status().as_u16(), stale.status().as_u16(), unsigned.status().as_u16()), (401, 401, 401));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(r.slack.calls_of("chat.postMessage").is_empty(), "nothing was answered");
    assert!(r.app.engine.open_conversation("slack", CUSTOMER).await.unwrap().is_none());

    let b = base.clone();
    let send = move |e: Value| {
        let b = b.clone();
        tokio::spawn(async move { assert_eq!(event(&b, e).await, 200) });
    };
    let b = base.clone();
    let click = move |p: Value| {
        let b = b.clone();
        tokio::spawn(async move { assert_eq!(interaction(&b, p).await, 200) });
    };
    recover_by_buttons_and_a_select(&r, &send, &click).await;
    r.stop().await;
}

// Slack delivers an event again when it did not see the acknowledgement in
// time; with the Events API, and across two instances on one PostgreSQL,
// the member is answered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_a_redelivered_event_is_answered_once() {
    // Socket Mode: the same envelope three times, with retry_attempt.
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "socket", &[]).await;
    let ts = r.slack.ts();
    for attempt in 0..3 {
        r.slack.push(
            &format!("dup-{attempt}"),
            stand_in::message(CUSTOMER, SUPPORT, &ts, "I forgot my password"),
            attempt,
        );
    }
    // The message event and the app_mention event of one message are one too.
    let mention = json!({ "type": "app_mention", "user": CUSTOMER, "channel": SUPPORT, "ts": ts,
                          "text": "<@U0FRONTDESK> I forgot my password" });
    r.slack.push("dup-mention", mention, 0);
    for envelope in ["dup-0", "dup-1", "dup-2", "dup-mention"] {
        r.slack.ack(envelope).await;
    }
    nth_dm(&r.slack, 1, "the answer").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dm_posts(&r.slack).len(), 1, "answered once: {:#?}", dm_posts(&r.slack));
    r.stop().await;

    // The Events API on two instances: three deliveries, spread over both.
    let pg = common::TestDb::postgres().await;
    let a = Running::with_directories(&pg.url, "events", &[]).await;
    let b = Running::start(&pg.url, a.slack.clone(), "events", &[]).await;
    let ts = a.slack.ts();
    let message = stand_in::message(CUSTOMER, SUPPORT, &ts, "I forgot my password");
    let (ba, bb) = (a.base.clone().unwrap(), b.base.clone().unwrap());
    let deliveries = [ba.clone(), bb.clone(), ba].map(|base| {
        let m = message.clone();
        tokio::spawn(async move { event(&base, m).await })
    });
    for d in deliveries {
        assert_eq!(d.await.unwrap(), 200);
    }
    nth_dm(&a.slack, 1, "the answer").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dm_posts(&a.slack).len(), 1, "answered once across instances: {:#?}", dm_posts(&a.slack));
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_an_answer_one_instance_is_sending_is_not_sent_again_by_another() {
    // Instance A answers and is still posting (a slow Slack) when the
    // redelivered event reaches instance B: B must not post A's answer too.
    let pg = common::TestDb::postgres().await;
    let a = Running::with_directories(&pg.url, "events", &[]).await;
    let b = Running::start(&pg.url, a.slack.clone(), "events", &[]).await;
    a.slack.slow("chat.postMessage", Duration::from_millis(1500));
    let message = stand_in::message(CUSTOMER, SUPPORT, &a.slack.ts(), "I forgot my password");
    let (ba, bb) = (a.base.clone().unwrap(), b.base.clone().unwrap());
    let first = tokio::spawn({
        let m = message.clone();
        async move { event(&ba, m).await }
    });
    nth_dm(&a.slack, 1, "instance A's answer on its way").await;
    assert_eq!(event(&bb, message).await, 200);
    assert_eq!(first.await.unwrap(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dm_posts(&a.slack).len(), 1, "answered once across instances: {:#?}", dm_posts(&a.slack));
    b.stop().await;
    a.stop().await;
}

async fn command(r: &Running, id: &str, user: &str, text: &str) -> String {
    r.slack.command(id, stand_in::slash(user, SUPPORT, text, &r.slack.response_url(id)));
    let ack = r.slack.ack(id).await;
    assert_eq!(ack["payload"]["response_type"], "ephemeral", "{ack}");
    ack["payload"]["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_only_agents_use_frontdesk_and_a_started_flow_continues_in_the_member_s_dm() {
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "socket", &[]).await;

    let refused = command(&r, "cmd-1", CUSTOMER, "lookup username alee").await;
    assert!(refused.contains("support team only"), "{refused}");
    let audit = r.app.store.audit_log(5).await.unwrap();
    assert!(audit.iter().any(|a| a.4 == "agent_command_refused" && a.1 == "slack"), "{audit:?}");

    let found = command(&r, "cmd-2", AGENT, "lookup username alee").await;
    assert!(found.contains("Acme Widgets GmbH") && found.contains("Ann.Lee@acme.example"), "{found}");

    let started = command(&r, "cmd-3", AGENT, &format!("start find_company <@{CUSTOMER}|pat>")).await;
    assert!(started.contains("Started find_company"), "{started}");
    let first = nth_dm(&r.slack, 1, "the started flow's first question").await;
    assert!(first.shown().contains("How would you like to find your company record?"));
    // The member answers in their DM; the flow goes on.
    let dm = first.channel().to_string();
    r.slack.push("e-1", stand_in::message(CUSTOMER, &dm, &r.slack.ts(), "user name"), 0);
    let next = nth_dm(&r.slack, 2, "the next question").await;
    assert!(next.shown().contains("user name"), "{}", next.shown());
    let audit = r.app.store.audit_log(20).await.unwrap();
    assert!(audit.iter().any(|a| a.3.is_some() && a.1 == "slack"), "actions audited as the agent's: {audit:?}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_mentions_typed_by_a_customer_mention_nobody() {
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "socket", &[]).await;
    // The member asks for a person; what they write then is relayed to the
    // agents' channel, escaped.
    r.slack.push("m-1", stand_in::message(CUSTOMER, SUPPORT, &r.slack.ts(), "agent"), 0);
    r.slack.wait_call("the hand-off notice", |c| c.channel() == STAFF).await;
    let dm = nth_dm(&r.slack, 1, "the hand-off message").await.channel().to_string();
    r.slack.push(
        "m-2",
        stand_in::message(CUSTOMER, &dm, &r.slack.ts(), "<!channel> <@U123> <!here> see <https://evil.example|this>"),
        0,
    );
    let relayed = r.slack.wait_call("the relay", |c| c.channel() == STAFF && c.shown().contains("wrote")).await;
    let text = relayed.body["text"].as_str().unwrap();
    assert!(text.contains("&lt;!channel&gt; &lt;@U123&gt; &lt;!here&gt;"), "{text}");
    for call in r.slack.calls() {
        let shown = call.shown();
        for raw in ["<!channel>", "<@U123>", "<!here>", "<https://evil.example"] {
            assert!(!shown.contains(raw), "{} shows {raw}: {shown}", call.method);
        }
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_a_disconnect_mid_conversation_reconnects_and_the_conversation_goes_on() {
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "socket", &[]).await;
    r.slack.push("d-1", stand_in::message(CUSTOMER, SUPPORT, &r.slack.ts(), "I forgot my password"), 0);
    let first = nth_dm(&r.slack, 1, "the first question").await;
    r.slack.disconnect();
    r.slack.wait_connections(2).await;
    assert!(r.slack.calls_of("apps.connections.open").len() >= 2, "a fresh connection was asked for");
    let dm = first.channel().to_string();
    r.slack.push("d-2", stand_in::message(CUSTOMER, &dm, &r.slack.ts(), "user name"), 0);
    let next = nth_dm(&r.slack, 2, "the answer after the reconnect").await;
    assert!(next.shown().contains("user name"), "{}", next.shown());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_a_rate_limited_call_waits_and_is_sent_once() {
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "socket", &[]).await;
    r.slack.rate_limit("chat.postMessage", 1);
    let started = std::time::Instant::now();
    r.slack.push(
        "r-1",
        stand_in::message(CUSTOMER, &format!("D{}", &CUSTOMER[1..]), &r.slack.ts(), "I forgot my password"),
        0,
    );
    nth_dm(&r.slack, 1, "the answer after the rate limit").await;
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited the Retry-After");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dm_posts(&r.slack).len(), 1);
    r.stop().await;
}

// With `slack.private = "ephemeral"`, the conversation continues in the
// support channel in messages only the member sees; a click replaces its
// question through the interaction's response_url.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_ephemeral_mode_keeps_the_conversation_to_the_member() {
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "socket", &[("FRONTDESK__SLACK__PRIVATE", "ephemeral")]).await;
    r.slack.push("p-1", stand_in::message(CUSTOMER, SUPPORT, &r.slack.ts(), "I forgot my password"), 0);
    let first = r.slack.wait_call("an ephemeral question", |c| c.method == "chat.postEphemeral").await;
    assert_eq!((first.channel(), first.body["user"].as_str()), (SUPPORT, Some(CUSTOMER)));
    let buttons = actions(&first);
    let mut click = stand_in::click(CUSTOMER, SUPPORT, &first.ts, &buttons[0], "0", &r.slack.response_url("p"));
    click["container"]["is_ephemeral"] = json!(true);
    r.slack.interact("p-2", click);
    let replaced = r.slack.wait_call("the question replaced", |c| c.method == "response_url").await;
    assert_eq!(replaced.body["replace_original"], true);
    r.slack.wait_calls("the next question", 2, |c| c.method == "chat.postEphemeral").await;
    assert!(r.slack.calls_of("chat.postMessage").is_empty(), "nothing was posted in public");
    r.stop().await;
}

// A reply Slack refuses every time it is tried stays owed, and the sweep
// sends it once Slack takes it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_a_reply_slack_refused_is_swept_out_later() {
    let db = common::TestDb::sqlite();
    let r = Running::with_directories(&db.url, "socket", &[("FRONTDESK__SLACK__SEND_ATTEMPTS", "2")]).await;
    r.slack.rate_limit("chat.postMessage", 2);
    let dm = format!("D{}", &CUSTOMER[1..]);
    r.slack.push("w-1", stand_in::message(CUSTOMER, &dm, &r.slack.ts(), "I forgot my password"), 0);
    let owed = dm_showing(&r.slack, "How would you like to find your company record?").await;
    assert_eq!(owed.channel(), dm);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dm_posts(&r.slack).len(), 1, "sent once, by the sweep: {:#?}", dm_posts(&r.slack));
    let open = r.app.engine.open_conversation("slack", CUSTOMER).await.unwrap().unwrap();
    assert!(r.app.engine.undelivered(open.id).await.unwrap().is_empty(), "and marked delivered");
    r.stop().await;
}
