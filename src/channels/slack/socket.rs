//! Socket Mode: an outbound WebSocket Slack hands events to (for
//! deployments behind a firewall). slack-morphism holds the connection,
//! pings it, and reconnects (with backoff) when it drops or Slack sends
//! `disconnect`; Slack redelivers what was not acknowledged.
//!
//! Its callbacks run one at a time inside the socket's read loop, and the
//! acknowledgement goes out when a callback returns: each one only hands
//! the work to a task of its own and returns, so Slack has its
//! acknowledgement at once and a slow turn holds up no other event. A
//! command's answer rides in its acknowledgement, so that one waits for the
//! agent desk (at most about two seconds, see `commands`).

use std::sync::Arc;

use anyhow::Context as _;
use slack_morphism::prelude::*;

use super::{api::Client, incoming, render, Slack};

fn slack_of(state: &SlackClientEventsUserStateStorage) -> Option<Slack> {
    state.get_user_state::<Slack>().cloned()
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let (Some(slack), Some(message)) = (slack_of(&*state.read().await), incoming::message(&event)) else {
        return Ok(());
    };
    tokio::spawn(async move { slack.on_message(message).await });
    Ok(())
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let (Some(slack), Some(click)) = (slack_of(&*state.read().await), incoming::click(&event)) else {
        return Ok(());
    };
    tokio::spawn(async move { slack.on_click(click).await });
    Ok(())
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let Some(slack) = slack_of(&*state.read().await) else {
        return Ok(SlackCommandEventResponse::new(SlackMessageContent::new().with_text(String::new())));
    };
    let text = slack.answer_command(incoming::command(&event)).await;
    let content = render::notice_raw(&text);
    Ok(SlackCommandEventResponse::new(SlackMessageContent::new().with_text(content.text))
        .with_response_type(SlackMessageResponseType::Ephemeral))
}

fn on_error(
    e: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<Client>,
    _state: SlackClientEventsUserState,
) -> axum::http::StatusCode {
    // Acknowledged all the same: a payload we cannot read would only come
    // back, again and again.
    tracing::warn!("a Socket Mode envelope could not be handled: {e}");
    axum::http::StatusCode::OK
}

/// Holds the Socket Mode connection until `stop` changes.
pub(super) async fn run(slack: Slack, mut stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    let app_token = slack.config().app_token.clone().context("Socket Mode needs slack.app_token")?;
    let token = SlackApiToken::new(SlackApiTokenValue::new(app_token.expose().to_string()));
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(slack.api().client.clone())
            .with_error_handler(on_error)
            .with_user_state(slack.clone()),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_push_events(on_push)
        .with_interaction_events(on_interaction)
        .with_command_events(on_command);
    // One connection: a second would only halve each one's events.
    let config = SlackClientSocketModeConfig::new().with_max_connections_count(1);
    let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
    listener.listen_for(&token).await.context("opening Slack's Socket Mode connection")?;
    listener.start().await;
    tracing::info!("Slack Socket Mode connected");
    let _ = stop.wait_for(|s| *s).await;
    listener.shutdown().await;
    Ok(())
}
