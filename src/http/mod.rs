//! `serve`'s HTTP face (axum): the pages frontdesk's own mails link to
//! ([`pages`]: contact-request decisions), the API the identity system calls
//! to redeem a reset token ([`api`]), and what operators watch ([`health`]:
//! `/healthz`, `/readyz`, `/metrics`).
//!
//! Every request has a body limit and a deadline, and is traced by its route
//! (`/contact-requests/{token}`), never by its URI: the tokens in links must
//! not reach the logs. A GET never changes anything (mail scanners and link
//! previews fetch every link they see). The listener is bound before the
//! store opens, so that with port 0 the address it got is known when the
//! first mail links to it.

mod api;
mod health;
mod pages;

use std::{future::IntoFuture as _, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    extract::{MatchedPath, Request},
    Router,
};
use tokio::{net::TcpListener, sync::watch};
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer, trace::TraceLayer};

use crate::{app::App, config::HttpSettings, engine::Engine, store::Store};

/// What every handler may use.
#[derive(Clone)]
pub struct HttpState {
    pub store: Store,
    pub engine: Engine,
    pub settings: Arc<crate::config::Settings>,
    api_limiter: Arc<api::Limiter>,
}

impl HttpState {
    pub fn new(app: &App) -> HttpState {
        HttpState {
            store: app.store.clone(),
            engine: app.engine.clone(),
            settings: app.settings.clone(),
            api_limiter: Arc::new(api::limiter(&app.settings.http)),
        }
    }
}

/// Binds the configured address (port 0: any free port).
pub async fn bind(settings: &HttpSettings) -> anyhow::Result<TcpListener> {
    TcpListener::bind(settings.listen).await.with_context(|| {
        format!("listening on {} (set http.listen, or FRONTDESK__HTTP__LISTEN, to another address)", settings.listen)
    })
}

/// Every route (ours, and `extra` ones channels add), with the limits and
/// tracing every request gets.
pub fn router(state: HttpState, extra: Vec<Router>) -> Router {
    let http = &state.settings.http;
    let (body_limit, deadline) = (http.body_limit, http.request_timeout);
    let mut router =
        Router::new().merge(pages::routes()).merge(api::routes()).merge(health::routes()).with_state(state);
    for routes in extra {
        router = router.merge(routes);
    }
    router
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, deadline))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            // The route, not the URI: the token of a link stays out of logs.
            let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("http", method = %request.method(), route = %route)
        }))
}

/// Serves until `stop` turns true, then finishes the requests in progress
/// for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    extra: Vec<Router>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let app = router(state, extra).into_make_service_with_connect_info::<SocketAddr>();
    let mut told = stop.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = told.wait_for(|stop| *stop).await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        ended = &mut server => {
            if let Err(e) = ended {
                tracing::error!("the HTTP server stopped: {e}");
            }
            return;
        }
        _ = stop.wait_for(|stop| *stop) => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("the HTTP server stopped: {e}"),
        Err(_) => tracing::warn!("HTTP requests still running after {grace:?} were dropped"),
    }
}
