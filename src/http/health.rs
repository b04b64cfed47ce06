//! What operators watch: `GET /healthz` (the process answers), `GET /readyz`
//! (it can serve: the store answers with every migration applied, and the
//! router flow compiles; 503 with the reason otherwise), and `GET /metrics`
//! in the Prometheus text format ([`crate::metrics`]).

use std::time::Duration;

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::json;

use super::HttpState;

/// How long readiness waits for the store before saying it is not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({ "alive": true }))).into_response()
}

async fn readyz(State(s): State<HttpState>) -> Response {
    let problem = match tokio::time::timeout(READY_TIMEOUT, s.store.check_ready()).await {
        Err(_) => Some(format!("store: no answer within {READY_TIMEOUT:?}")),
        Ok(Err(e)) => Some(format!("store: {e}")),
        Ok(Ok(())) => s.engine.check_flows().await.err().map(|e| format!("flows: {e}")),
    };
    match problem {
        None => (StatusCode::OK, Json(json!({ "ready": true }))).into_response(),
        Some(reason) => {
            tracing::warn!("not ready: {reason}");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "ready": false, "reason": reason }))).into_response()
        }
    }
}

async fn metrics(State(s): State<HttpState>) -> Response {
    let metrics = crate::metrics::get();
    match tokio::time::timeout(READY_TIMEOUT, s.store.conversations_by_status()).await {
        Ok(Ok(counts)) => metrics.set_conversations(&counts),
        // The counters still tell what they know; the gauge keeps its last value.
        Ok(Err(e)) => tracing::warn!("metrics: counting conversations failed: {e}"),
        Err(_) => tracing::warn!("metrics: counting conversations took longer than {READY_TIMEOUT:?}"),
    }
    let mut response = metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
