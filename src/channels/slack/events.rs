//! The Events API: Slack's requests to `serve`'s HTTP server.
//!
//! | route | Slack app setting |
//! |---|---|
//! | `POST /slack/events` | Event Subscriptions' Request URL (`url_verification` answered here) |
//! | `POST /slack/interactivity` | Interactivity's Request URL (button clicks) |
//! | `POST /slack/commands` | `/frontdesk`'s Request URL |
//!
//! Every request's signature (`x-slack-signature`: HMAC-SHA256 of
//! `v0:{timestamp}:{body}` with the signing secret) is checked, and its
//! timestamp must be within five minutes: anything else gets 401 and
//! changes nothing. Events and clicks are answered 200 at once and handled
//! after; a command's answer is the response (within about two seconds).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::json;
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use super::{incoming, Slack};

pub(super) fn routes(slack: Slack) -> Router {
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/interactivity", post(interactivity))
        .route("/slack/commands", post(commands))
        .with_state(slack)
}

/// The body, if the request is signed by Slack with our secret and recent.
fn verified(slack: &Slack, headers: &HeaderMap, body: &Bytes) -> Option<String> {
    let secret = slack.config().signing_secret.as_ref()?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)?;
    let timestamp = header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP)?;
    let body = std::str::from_utf8(body).ok()?;
    let verifier = SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret.expose().to_string()));
    match verifier.verify(signature, body, timestamp) {
        Ok(()) => Some(body.to_string()),
        Err(e) => {
            tracing::warn!("a Slack request failed its signature check: {e}");
            None
        }
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid signature" }))).into_response()
}

fn unreadable(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::warn!("a signed Slack {what} could not be read: {e}");
    (StatusCode::BAD_REQUEST, Json(json!({ "error": "unreadable payload" }))).into_response()
}

async fn events(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(body) = verified(&slack, &headers, &body) else { return unauthorized() };
    if let Some(retry) = headers.get("x-slack-retry-num").and_then(|v| v.to_str().ok()) {
        tracing::debug!(retry, "Slack redelivered an event");
    }
    match serde_json::from_str::<SlackPushEvent>(&body) {
        Ok(SlackPushEvent::UrlVerification(v)) => Json(json!({ "challenge": v.challenge })).into_response(),
        Ok(SlackPushEvent::EventCallback(event)) => {
            if let Some(message) = incoming::message(&event) {
                tokio::spawn(async move { slack.on_message(message).await });
            }
            StatusCode::OK.into_response()
        }
        Ok(SlackPushEvent::AppRateLimited(_)) => {
            tracing::warn!("Slack says the app's events are being rate limited");
            StatusCode::OK.into_response()
        }
        Err(e) => unreadable("event", e),
    }
}

#[derive(serde::Deserialize)]
struct Interaction {
    payload: String,
}

async fn interactivity(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(body) = verified(&slack, &headers, &body) else { return unauthorized() };
    let payload = match serde_urlencoded::from_str::<Interaction>(&body) {
        Ok(form) => form.payload,
        Err(e) => return unreadable("interaction", e),
    };
    match serde_json::from_str::<SlackInteractionEvent>(&payload) {
        Ok(event) => {
            if let Some(click) = incoming::click(&event) {
                tokio::spawn(async move { slack.on_click(click).await });
            }
            StatusCode::OK.into_response()
        }
        Err(e) => unreadable("interaction", e),
    }
}

async fn commands(State(slack): State<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(body) = verified(&slack, &headers, &body) else { return unauthorized() };
    let event = match serde_urlencoded::from_str::<SlackCommandEvent>(&body) {
        Ok(event) => event,
        Err(e) => return unreadable("command", e),
    };
    let text = slack.answer_command(incoming::command(&event)).await;
    Json(json!({ "response_type": "ephemeral", "text": text })).into_response()
}
