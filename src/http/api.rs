//! The token API for the identity system. frontdesk owns no passwords: the
//! operator's reset page, given the token from a recovery mail's link,
//! calls `POST /api/v1/recovery-tokens/redeem` with `Authorization: Bearer
//! <key>` and `{"token": "…"}`, and learns whose password it may let be set.
//!
//! | answer | when |
//! |---|---|
//! | 200 `{username, org_id, contact_id, email}` | the token was good; it is used now (once, however many call at once, on however many instances) |
//! | 410 `{"error": "gone"}` | used, expired, revoked or unknown (one answer for all) |
//! | 400 `{"error": …}` | not JSON, no `token`, or not a token |
//! | 401 | no key or a wrong one (compared in constant time) |
//! | 429 | one client address called too often (`http.api_rate`), with `Retry-After` |
//! | 404 | the API is off (no `FRONTDESK__HTTP__API_KEY`) |
//!
//! Every redemption, and every refusal of an authenticated call, is audited.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{rejection::JsonRejection, ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::HttpState;
use crate::account::tokens::{self, RedeemError};

pub(super) type Limiter = governor::DefaultKeyedRateLimiter<IpAddr>;

/// Calls per client address, as `http.api_rate` allows.
pub(super) fn limiter(settings: &crate::config::HttpSettings) -> Limiter {
    let rate = settings.api_rate;
    let count = std::num::NonZeroU32::new(rate.count.clamp(1, u32::MAX as i64) as u32).expect("at least one");
    let every = rate.period / count.get();
    let quota = governor::Quota::with_period(every.max(std::time::Duration::from_nanos(1)))
        .expect("a period longer than zero")
        .allow_burst(count);
    governor::RateLimiter::keyed(quota)
}

pub(super) fn routes() -> axum::Router<HttpState> {
    Router::new().route("/api/v1/recovery-tokens/redeem", post(redeem))
}

#[derive(Deserialize)]
struct RedeemRequest {
    token: String,
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Whether the request carries the configured key.
fn authorized(headers: &HeaderMap, key: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests first: equal lengths, so the comparison's time says nothing
    // about the key's length either.
    Sha256::digest(presented.trim().as_bytes()).ct_eq(&Sha256::digest(key.as_bytes())).into()
}

async fn redeem(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<RedeemRequest>, JsonRejection>,
) -> Response {
    let Some(key) = &s.settings.http.api_key else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(not_until) = s.api_limiter.check_key(&peer.ip()) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
        let seconds = wait.as_secs().max(1).to_string();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_str(&seconds).expect("digits"));
        return response;
    }
    if !authorized(&headers, key.expose()) {
        let mut response = error(StatusCode::UNAUTHORIZED, "a valid API key is needed");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let Ok(Json(request)) = body else {
        return error(StatusCode::BAD_REQUEST, "expected a JSON body {\"token\": \"...\"}");
    };
    let caller = format!("api:{}", peer.ip());
    match tokens::redeem(&s.store, request.token.trim(), &caller, s.engine.clock().now_ms()).await {
        Ok(redeemed) => (StatusCode::OK, Json(redeemed)).into_response(),
        Err(RedeemError::Gone) => error(StatusCode::GONE, "gone"),
        Err(RedeemError::Malformed) => error(StatusCode::BAD_REQUEST, "not a token"),
        Err(RedeemError::Store(e)) => {
            tracing::error!("redeeming a reset token: {e}");
            error(StatusCode::SERVICE_UNAVAILABLE, "try again")
        }
    }
}
