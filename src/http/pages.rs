//! The contact-request decision page an administrator's mail links to:
//! `GET /contact-requests/{token}` shows who asks to join which company,
//! with Approve and Decline buttons; the `POST` they send decides, once.
//!
//! A GET changes nothing (mail scanners and link previews fetch links).
//! A used, expired or unknown token gets one page, one status (410) and one
//! path through the code (hash, one lookup), so neither tells which it was.
//! Every page is sent with a CSP that allows no script, styles from this
//! origin only, and forms that post here only; no referrer (the token is in
//! the URL), no framing, no caching.

use std::sync::LazyLock;

use axum::{
    extract::{rejection::FormRejection, Path, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Form, Router,
};
use serde::Deserialize;
use serde_json::json;

use super::HttpState;
use crate::account::requests::{self, Decider, DecisionError};

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/contact-requests/{token}", get(show).post(decide)).route("/static/page.css", get(stylesheet))
}

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;\
color:#1d2430;line-height:1.5}h1{font-size:1.4rem}.who{background:#f3f5f8;padding:1rem;border-radius:.5rem}\
form{display:inline-block;margin:1rem 1rem 0 0}button{font-size:1rem;padding:.6rem 1.4rem;border-radius:.4rem;\
border:1px solid #8892a0;background:#fff;cursor:pointer}button.approve{background:#1f6feb;color:#fff;\
border-color:#1f6feb}.small{color:#5a6270;font-size:.9rem}";

const LAYOUT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{ title }}</title><link rel="stylesheet" href="/static/page.css"></head>
<body><h1>{{ title }}</h1>{% block body %}{% endblock %}</body></html>"#;

const REQUEST: &str = r#"{% extends "layout.html" %}{% block body %}
<p class="who" id="request"><strong>{{ first_name }} {{ last_name }}</strong> ({{ email }}) asks to be added as a
contact of <strong>{{ company }}</strong>.</p>
<p class="small">Request {{ number }}. Approving creates their My Account login and mails them their user name;
declining tells them politely. The link works once.</p>
<form method="post"><input type="hidden" name="decision" value="approve">
<button class="approve" type="submit" id="approve">Approve</button></form>
<form method="post"><input type="hidden" name="decision" value="decline">
<button type="submit" id="decline">Decline</button></form>
{% endblock %}"#;

const DECIDED: &str = r#"{% extends "layout.html" %}{% block body %}
<p id="outcome">{% if approved %}{{ name }} is now a contact of {{ company }} and was sent a welcome mail with
their user name.{% else %}{{ name }} was told that the request was declined.{% endif %}</p>
<p class="small">Request {{ number }}. You can close this page.</p>{% endblock %}"#;

const GONE: &str = r#"{% extends "layout.html" %}{% block body %}
<p id="outcome">This link no longer works: the request was already decided, it expired, or the link is not
complete. If someone still needs to be added, ask them to request it again, or contact customer service.</p>
{% endblock %}"#;

const MESSAGE: &str = r#"{% extends "layout.html" %}{% block body %}<p id="outcome">{{ text }}</p>{% endblock %}"#;

static PAGES: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    for (name, source) in
        [("layout.html", LAYOUT), ("request.html", REQUEST), ("decided.html", DECIDED), ("gone.html", GONE)]
    {
        env.add_template(name, source).expect("valid page template");
    }
    env.add_template("message.html", MESSAGE).expect("valid page template");
    env
});

/// A page with the security headers every page gets.
fn page(status: StatusCode, template: &str, context: serde_json::Value) -> Response {
    let html = PAGES.get_template(template).and_then(|t| t.render(context)).unwrap_or_else(|e| {
        tracing::error!("page {template} did not render: {e}");
        "<!doctype html><title>Error</title><p>Something went wrong on our side.</p>".to_string()
    });
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn gone() -> Response {
    page(StatusCode::GONE, "gone.html", json!({ "title": "This link no longer works" }))
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "message.html",
        json!({ "title": "Please try again", "text": "We could not open this request just now. Please try the link again in a few minutes." }),
    )
}

async fn show(State(s): State<HttpState>, Path(token): Path<String>) -> Response {
    let now = s.engine.clock().now_ms();
    match requests::by_link(&s.store, &s.settings, &token, now).await {
        Ok(Some(r)) => page(
            StatusCode::OK,
            "request.html",
            json!({
                "title": "A request to join your company's account",
                "first_name": r.request.first_name, "last_name": r.request.last_name, "email": r.request.email,
                "company": r.company, "number": r.request.number,
            }),
        ),
        Ok(None) => gone(),
        Err(e) => {
            tracing::error!("showing a contact request: {e}");
            unavailable()
        }
    }
}

#[derive(Deserialize)]
struct Decision {
    decision: String,
}

async fn decide(
    State(s): State<HttpState>,
    Path(token): Path<String>,
    form: Result<Form<Decision>, FormRejection>,
) -> Response {
    let approve = match form.as_ref().ok().map(|f| f.decision.as_str()) {
        Some("approve") => true,
        Some("decline") => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "message.html",
                json!({ "title": "Nothing was decided", "text": "Please use the Approve or Decline button." }),
            )
        }
    };
    let now = s.engine.clock().now_ms();
    // Read first for the page's wording; the decision itself is guarded.
    let shown = match requests::by_link(&s.store, &s.settings, &token, now).await {
        Ok(Some(r)) => r,
        Ok(None) => return gone(),
        Err(e) => {
            tracing::error!("deciding a contact request: {e}");
            return unavailable();
        }
    };
    match requests::decide(&s.store, &s.settings, Decider::Link { token }, approve, now).await {
        Ok(number) => page(
            StatusCode::OK,
            "decided.html",
            json!({
                "title": if approve { "Approved" } else { "Declined" },
                "approved": approve, "number": number, "company": shown.company,
                "name": format!("{} {}", shown.request.first_name, shown.request.last_name),
            }),
        ),
        Err(DecisionError::NotPending) => gone(),
        Err(DecisionError::Store(e)) => {
            tracing::error!("deciding a contact request: {e}");
            unavailable()
        }
    }
}

async fn stylesheet() -> Response {
    let mut response = STYLE.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
