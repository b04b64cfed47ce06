//! `serve`'s HTTP face over real HTTP: the server on port 0 with its own
//! store, driven by the flows a customer goes through, on SQLite and
//! PostgreSQL.

mod common;

use std::time::Duration;

use frontdesk::{app::App, config::Settings, directory::import::import_dir};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::watch;

const KEY: &str = "test-api-key-0123456789";

/// An app with its HTTP server running.
struct Served {
    base: String,
    app: App,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
}

impl Served {
    async fn start(database: &str, tune: impl FnOnce(&mut Settings)) -> Served {
        let data = tempfile::tempdir().unwrap();
        let mut settings = common::settings();
        settings.database.url = Some(database.to_string());
        settings.http.listen = "127.0.0.1:0".parse().unwrap();
        settings.http.api_key = Some(KEY.into());
        tune(&mut settings);
        let listener = frontdesk::http::bind(&settings.http).await.unwrap();
        settings.served_at(listener.local_addr().unwrap());
        let base = settings.http.public_url.clone();
        let app = App::open(settings, data.path().to_path_buf()).await.unwrap();
        let (stop, stopped) = watch::channel(false);
        let state = frontdesk::http::HttpState::new(&app);
        let server = tokio::spawn(frontdesk::http::serve(listener, state, Vec::new(), stopped, Duration::from_secs(2)));
        Served { base, app, stop, server, _data: data }
    }

    async fn with_directory(database: &str, tune: impl FnOnce(&mut Settings)) -> Served {
        let served = Served::start(database, tune).await;
        import_dir(&served.app.store, &common::repo_path("tests/fixtures/directory"), &Default::default(), 1)
            .await
            .unwrap();
        served
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.server.await.unwrap();
        self.app.store.close().await;
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The outbox's mails of `template`, oldest first, as `(to, context)`.
async fn mails(app: &App, template: &str) -> Vec<(String, Value)> {
    let entries = frontdesk::mail::outbox::entries(&app.store).await.unwrap();
    entries
        .into_iter()
        .filter(|e| e.template == template)
        .map(|e| (e.to_addr, serde_json::from_str(&e.context).unwrap()))
        .collect()
}

/// Ann recovers her login in a chat; returns the token of her reset link.
async fn recovery_token(app: &App, who: &str) -> String {
    for line in ["I forgot my password", "user name", "alee", "1"] {
        common::say(&app.engine, who, line).await;
    }
    let (to, context) = mails(app, "login_info").await.pop().expect("a login mail");
    assert_eq!(to, "Ann.Lee@acme.example");
    let url = context["reset_url"].as_str().unwrap();
    url.split("token=").nth(1).unwrap().to_string()
}

async fn redeem(base: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{base}/api/v1/recovery-tokens/redeem"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

both_backends!(a_recovery_mail_s_token_redeems_once_and_then_never, |url: String| async move {
    let s = Served::with_directory(&url, |_| {}).await;
    let token = recovery_token(&s.app, "ann").await;

    assert_eq!(redeem(&s.base, "wrong-key-0123456789", json!({ "token": token })).await.0, StatusCode::UNAUTHORIZED);
    let anonymous = client().post(s.url("/api/v1/recovery-tokens/redeem")).json(&json!({ "token": token }));
    assert_eq!(anonymous.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(redeem(&s.base, KEY, json!({ "tok": token })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(redeem(&s.base, KEY, json!({ "token": "not-a-token" })).await.0, StatusCode::BAD_REQUEST);
    let (status, body) = redeem(&s.base, KEY, json!({ "token": token })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["username"].as_str(), body["org_id"].as_str(), body["email"].as_str()),
        (Some("alee"), Some("ORG-1001"), Some("Ann.Lee@acme.example"))
    );
    assert!(body["contact_id"].as_i64().is_some());
    let (status, body) = redeem(&s.base, KEY, json!({ "token": token })).await;
    assert_eq!((status, body), (StatusCode::GONE, json!({ "error": "gone" })), "a token works once");
    // An unknown token gets the very same answer.
    let unknown = redeem(&s.base, KEY, json!({ "token": "AAAAAAAAAAAAAAAAAAAAAA" })).await;
    assert_eq!(unknown, (StatusCode::GONE, json!({ "error": "gone" })));

    let audit = s.app.store.audit_log(10).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.4.as_str()).collect();
    assert!(actions.contains(&"recovery_token_redeemed"), "{actions:?}");
    assert!(actions.contains(&"recovery_token_refused"), "{actions:?}");
    assert!(audit.iter().all(|a| !a.5.contains(&token)), "the token itself is never logged");
    s.stop().await;
});

both_backends!(a_newer_token_revokes_the_older_one, |url: String| async move {
    let s = Served::with_directory(&url, |_| {}).await;
    let first = recovery_token(&s.app, "ann").await;
    let second = recovery_token(&s.app, "ann2").await;
    assert_eq!(redeem(&s.base, KEY, json!({ "token": first })).await.0, StatusCode::GONE);
    assert_eq!(redeem(&s.base, KEY, json!({ "token": second })).await.0, StatusCode::OK);
    s.stop().await;
});

// Two instances on one PostgreSQL, twenty calls at once with one token:
// exactly one learns whose it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_on_two_instances_redeem_once() {
    let db = common::TestDb::postgres().await;
    let a = Served::with_directory(&db.url, |_| {}).await;
    let b = Served::start(&db.url, |_| {}).await;
    let token = recovery_token(&a.app, "ann").await;
    let calls = (0..20).map(|i| {
        let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
        let token = token.clone();
        tokio::spawn(async move { redeem(&base, KEY, json!({ "token": token })).await.0 })
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::GONE).count(), 19, "{statuses:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_rate_limited_per_client_and_off_without_a_key() {
    let db = common::TestDb::sqlite();
    let s = Served::start(&db.url, |s| {
        s.http.api_rate = frontdesk::config::Limit { count: 2, period: Duration::from_secs(60) }
    })
    .await;
    let body = json!({ "token": "AAAAAAAAAAAAAAAAAAAAAA" });
    for _ in 0..2 {
        assert_eq!(redeem(&s.base, KEY, body.clone()).await.0, StatusCode::GONE);
    }
    let limited = client().post(s.url("/api/v1/recovery-tokens/redeem")).bearer_auth(KEY).json(&body);
    let response = limited.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    s.stop().await;

    let off = Served::start(&db.url, |s| s.http.api_key = None).await;
    assert_eq!(redeem(&off.base, KEY, body).await.0, StatusCode::NOT_FOUND);
    off.stop().await;
}

/// Asks, through the real flow, for Carla to join Acme; returns the token
/// of the administrator's link, which points at this instance's page.
async fn contact_request(s: &Served, who: &str) -> String {
    for line in
        ["login", "4", "ABCD-1234-EFGH-5678", "3", "Carla", "Schmidt", "carla@acme.example", "{code}", "030 901821"]
    {
        common::say(&s.app.engine, who, line).await;
    }
    let (to, context) = mails(&s.app, "contact_request").await.pop().expect("a mail to the administrator");
    assert_eq!(to, "Ann.Lee@acme.example");
    let link = context["decide_url"].as_str().unwrap();
    let prefix = s.url("/contact-requests/");
    assert!(link.starts_with(&prefix), "{link} is this instance's page");
    link[prefix.len()..].to_string()
}

async fn get_page(s: &Served, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = client().get(s.url(path)).send().await.unwrap();
    (response.status(), response.headers().clone(), response.text().await.unwrap())
}

async fn post_decision(base: &str, token: &str, decision: &str) -> (StatusCode, String) {
    let response =
        client().post(format!("{base}/contact-requests/{token}")).form(&[("decision", decision)]).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

both_backends!(a_contact_request_is_decided_once_through_its_page, |url: String| async move {
    let s = Served::with_directory(&url, |_| {}).await;
    let token = contact_request(&s, "carla").await;
    let directory = frontdesk::directory::Directory::new(s.app.store.clone());

    // Looking changes nothing, however often (a mail scanner, a preview).
    for _ in 0..3 {
        let (status, headers, html) = get_page(&s, &format!("/contact-requests/{token}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Carla Schmidt") && html.contains("Acme Widgets GmbH"), "{html}");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
    }
    assert!(directory.contact_by_email("carla@acme.example").await.unwrap().is_none());

    assert_eq!(post_decision(&s.base, &token, "maybe").await.0, StatusCode::BAD_REQUEST);
    let (status, html) = post_decision(&s.base, &token, "approve").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("is now a contact of Acme Widgets GmbH"), "{html}");
    assert!(directory.contact_by_email("carla@acme.example").await.unwrap().is_some());
    assert_eq!(mails(&s.app, "contact_welcome").await.len(), 1);

    // Used: the page, and a second decision, say the link no longer works.
    let (used_status, _, used_page) = get_page(&s, &format!("/contact-requests/{token}")).await;
    let (again, _) = post_decision(&s.base, &token, "decline").await;
    let (unknown_status, _, unknown_page) = get_page(&s, "/contact-requests/AAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!((used_status, again, unknown_status), (StatusCode::GONE, StatusCode::GONE, StatusCode::GONE));
    assert_eq!(used_page, unknown_page, "used and unknown links look the same");
    assert_eq!(mails(&s.app, "contact_welcome").await.len() + mails(&s.app, "contact_declined").await.len(), 1);
    s.stop().await;
});

both_backends!(an_expired_link_looks_like_an_unknown_one, |url: String| async move {
    let s = Served::with_directory(&url, |s| s.account.contact_request_ttl = Duration::from_millis(50)).await;
    let token = contact_request(&s, "carla").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _, expired) = get_page(&s, &format!("/contact-requests/{token}")).await;
    let (_, _, unknown) = get_page(&s, "/contact-requests/AAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!((status, expired), (StatusCode::GONE, unknown));
    assert_eq!(post_decision(&s.base, &token, "approve").await.0, StatusCode::GONE);
    s.stop().await;
});

// Two tabs (here: two instances on one PostgreSQL) approve and decline at
// once: one decision, one mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_decisions_at_once_make_one() {
    let db = common::TestDb::postgres().await;
    let a = Served::with_directory(&db.url, |_| {}).await;
    let b = Served::start(&db.url, |_| {}).await;
    let token = contact_request(&a, "carla").await;
    let decisions = (0..10).map(|i| {
        let (base, token) = (if i % 2 == 0 { a.base.clone() } else { b.base.clone() }, token.clone());
        tokio::spawn(
            async move { post_decision(&base, &token, if i % 3 == 0 { "decline" } else { "approve" }).await.0 },
        )
    });
    let statuses: Vec<StatusCode> =
        futures::future::join_all(decisions).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    let outcomes = mails(&a.app, "contact_welcome").await.len() + mails(&a.app, "contact_declined").await.len();
    assert_eq!(outcomes, 1);
    a.stop().await;
    b.stop().await;
}

/// The value of the first sample line of `metric` with all of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let db = common::TestDb::sqlite();
    let s = Served::with_directory(&db.url, |_| {}).await;
    let (status, _, body) = get_page(&s, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"alive":true}"#));
    assert_eq!(get_page(&s, "/readyz").await.0, StatusCode::OK);

    let scrape = || async { get_page(&s, "/metrics").await.2 };
    let before = scrape().await;
    let turns = |text: &str| {
        sample(text, "frontdesk_turns_total", &[r#"flow="find_company""#, r#"channel="test""#, r#"outcome="waiting""#])
    };
    recovery_token(&s.app, "metrics-ann").await;
    let after = scrape().await;
    assert!(turns(&after) > turns(&before), "turns counted:\n{after}");
    assert!(
        sample(&after, "frontdesk_turn_duration_seconds_count", &[])
            > sample(&before, "frontdesk_turn_duration_seconds_count", &[])
    );
    assert!(sample(&after, "frontdesk_conversations", &[r#"status="waiting""#]) >= 1.0, "{after}");
    for metric in ["frontdesk_mail_outbox", "frontdesk_inbound_mail", "frontdesk_limit_refusals", "frontdesk_screening"]
    {
        assert!(after.contains(metric), "{metric} is exported:\n{after}");
    }
    assert!(!after.contains("acme.example") && !after.contains("alee"), "no personal data in labels");
    s.stop().await;
}

// The database goes away (no connections allowed, every one cut) and comes
// back: readiness follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database() {
    use sqlx::{Connection as _, Executor as _};
    let db = common::TestDb::postgres().await;
    let s = Served::start(&db.url, |_| {}).await;
    let name = db.url.rsplit('/').next().unwrap().to_string();
    assert_eq!(get_page(&s, "/readyz").await.0, StatusCode::OK);

    let mut admin = sqlx::PgConnection::connect(common::PG_ADMIN_URL).await.unwrap();
    admin.execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false").as_str()).await.unwrap();
    admin
        .execute(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'").as_str())
        .await
        .unwrap();
    let (status, _, body) = get_page(&s, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let reason: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reason["ready"], false);
    assert!(reason["reason"].as_str().unwrap().starts_with("store"), "{body}");

    admin.execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true").as_str()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if get_page(&s, "/readyz").await.0 == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "ready again once the database is back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    admin.close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_limited_in_size() {
    let db = common::TestDb::sqlite();
    let s = Served::start(&db.url, |s| s.http.body_limit = 1024).await;
    let big = json!({ "token": "A".repeat(4096) });
    assert_eq!(redeem(&s.base, KEY, big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    s.stop().await;
}

/// Headless Chromium, as `.ci/run` installs it (Debian's `chromium`).
async fn browser(profile: &std::path::Path) -> (chromiumoxide::Browser, tokio::task::JoinHandle<()>) {
    use futures::StreamExt as _;
    let chromium = std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "this test drives headless Chromium: install Debian's chromium (.ci/run does) or set CHROME"
    );
    let config = chromiumoxide::BrowserConfig::builder()
        .chrome_executable(chromium)
        .no_sandbox()
        .new_headless_mode()
        .user_data_dir(profile)
        // This machine's network is closed: no background fetches.
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"])
        .build()
        .unwrap();
    let (browser, mut handler) = chromiumoxide::Browser::launch(config).await.unwrap();
    let events = tokio::spawn(async move {
        while let Some(event) = handler.next().await {
            if let Err(e) = event {
                eprintln!("cdp: {e}");
            }
        }
    });
    (browser, events)
}

/// The text of `selector` once it contains `want` (within 10 s).
async fn text_of(page: &chromiumoxide::Page, selector: &str, want: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(element) = page.find_element(selector).await {
            if let Ok(Some(text)) = element.inner_text().await {
                if text.contains(want) {
                    return text;
                }
            }
        }
        assert!(std::time::Instant::now() < deadline, "{selector} never said {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// An administrator opens the link of their mail in a browser, reads who
// asks, and clicks Approve: the contact exists and is welcomed, and the page
// says so. The page's own stylesheet applies under its strict CSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_approves_in_a_real_browser() {
    let db = common::TestDb::sqlite();
    let s = Served::with_directory(&db.url, |_| {}).await;
    let token = contact_request(&s, "carla").await;
    let profile = tempfile::tempdir().unwrap();
    let (mut browser, events) = browser(profile.path()).await;

    let page = browser.new_page(s.url(&format!("/contact-requests/{token}")).as_str()).await.unwrap();
    let asks = text_of(&page, "#request", "Carla Schmidt").await;
    assert!(asks.contains("Acme Widgets GmbH"), "{asks}");
    let font: String = page.evaluate("getComputedStyle(document.body).fontFamily").await.unwrap().into_value().unwrap();
    assert!(font.contains("system-ui"), "the stylesheet applied: {font}");
    page.find_element("#approve").await.unwrap().click().await.unwrap();
    text_of(&page, "#outcome", "is now a contact of Acme Widgets GmbH").await;

    let directory = frontdesk::directory::Directory::new(s.app.store.clone());
    assert!(directory.contact_by_email("carla@acme.example").await.unwrap().is_some());
    assert_eq!(mails(&s.app, "contact_welcome").await.len(), 1);
    // Going back and clicking again decides nothing more.
    page.goto(s.url(&format!("/contact-requests/{token}")).as_str()).await.unwrap();
    text_of(&page, "#outcome", "This link no longer works").await;

    browser.close().await.unwrap();
    browser.wait().await.unwrap();
    events.await.unwrap();
    s.stop().await;
}
