//! Slack's Web API, as the channel uses it: a few methods, each tried again
//! on a rate limit (after the `Retry-After` Slack sends) or a network or
//! server failure, up to `slack.send_attempts` times.

use std::{future::Future, sync::Arc, time::Duration};

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use slack_morphism::{errors::SlackClientError, prelude::*};

use super::SlackError;
use crate::config::SlackSettings;

pub(super) type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;
pub(super) type Client = SlackClient<Connector>;

/// A message's content: the fallback text (notifications, screen readers)
/// and its blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub text: String,
    pub blocks: Vec<SlackBlock>,
}

impl Content {
    fn message(&self) -> SlackMessageContent {
        let content = SlackMessageContent::new().with_text(self.text.clone());
        if self.blocks.is_empty() {
            content
        } else {
            content.with_blocks(self.blocks.clone())
        }
    }
}

#[derive(Clone)]
pub(super) struct Api {
    pub(super) client: Arc<Client>,
    token: SlackApiToken,
    attempts: u32,
}

/// The HTTP connector: HTTPS with the system's roots; plain HTTP too when
/// the API is a configured stand-in (tests on loopback).
pub(super) fn connector(settings: &SlackSettings) -> anyhow::Result<Connector> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_native_roots()?;
    let https = match &settings.api_url {
        Some(_) => builder.https_or_http().enable_http1().build(),
        None => builder.https_only().enable_http1().build(),
    };
    let connector = SlackClientHyperConnector::with_connector(https);
    Ok(match &settings.api_url {
        Some(url) => connector.with_slack_api_url(url),
        None => connector,
    })
}

/// Whether a failed call may succeed when tried again, and after how long.
fn retry_after(e: &SlackClientError, attempt: u32) -> Option<Duration> {
    let backoff = Duration::from_millis(250 * 2u64.pow(attempt.min(6)));
    match e {
        SlackClientError::RateLimitError(r) => Some(r.retry_after.unwrap_or(Duration::from_secs(1))),
        SlackClientError::HttpError(h) => h.status_code.is_server_error().then_some(backoff),
        SlackClientError::HttpProtocolError(_) | SlackClientError::EndOfStream(_) => Some(backoff),
        _ => None,
    }
}

impl Api {
    pub(super) fn new(settings: &SlackSettings) -> anyhow::Result<Api> {
        let client = Arc::new(SlackClient::new(connector(settings)?));
        let token = SlackApiToken::new(SlackApiTokenValue::new(settings.bot_token.expose().to_string()));
        Ok(Api { client, token, attempts: settings.send_attempts })
    }

    /// Calls `call` until it succeeds, fails for good, or the attempts are
    /// used up. A rate limit waits what Slack asked (at most a minute).
    async fn retrying<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, SlackError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ClientResult<T>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => match retry_after(&e, attempt) {
                    Some(wait) if attempt < self.attempts => {
                        tracing::warn!(attempt, call = what, retry_in = ?wait, "Slack call failed; retrying: {e}");
                        tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
                        attempt += 1;
                    }
                    _ => return Err(SlackError::Api(format!("{what}: {e}"))),
                },
            }
        }
    }

    /// Posts a message; returns its `ts`.
    pub(super) async fn post(
        &self,
        channel: &str,
        thread: Option<&str>,
        content: &Content,
    ) -> Result<String, SlackError> {
        let session = self.client.open_session(&self.token);
        let mut req = SlackApiChatPostMessageRequest::new(channel.into(), content.message());
        req.thread_ts = thread.map(|t| SlackTs::new(t.to_string()));
        // What a customer typed never unfurls into a preview in our answers.
        req.unfurl_links = Some(false);
        req.unfurl_media = Some(false);
        let posted = self.retrying("chat.postMessage", || session.chat_post_message(&req)).await?;
        Ok(posted.ts.to_string())
    }

    /// Posts a message only `user` sees, in `channel`.
    pub(super) async fn post_ephemeral(&self, channel: &str, user: &str, content: &Content) -> Result<(), SlackError> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiChatPostEphemeralRequest::new(channel.into(), user.into(), content.message());
        self.retrying("chat.postEphemeral", || session.chat_post_ephemeral(&req)).await.map(|_| ())
    }

    /// Replaces a message the app posted.
    pub(super) async fn update(&self, channel: &str, ts: &str, content: &Content) -> Result<(), SlackError> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiChatUpdateRequest::new(channel.into(), content.message(), SlackTs::new(ts.to_string()));
        self.retrying("chat.update", || session.chat_update(&req)).await.map(|_| ())
    }

    /// Replaces the message an interaction came from, through its
    /// `response_url` (the only way to change an ephemeral message).
    pub(super) async fn respond(&self, response_url: &str, content: &Content) -> Result<(), SlackError> {
        let url = url::Url::parse(response_url).map_err(|e| SlackError::Api(format!("response_url: {e}")))?;
        let url = SlackResponseUrl::new(url);
        let mut req = SlackApiPostWebhookMessageRequest::new(content.message());
        req.replace_original = Some(true);
        self.retrying("response_url", || self.client.respond_to_event(&url, &req)).await.map(|_| ())
    }

    /// The direct-message channel with `user` (opened if need be).
    pub(super) async fn open_dm(&self, user: &str) -> Result<String, SlackError> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiConversationsOpenRequest::new().with_users(vec![user.into()]);
        let opened = self.retrying("conversations.open", || session.conversations_open(&req)).await?;
        Ok(opened.channel.id.to_string())
    }

    /// The members of a user group.
    pub(super) async fn group_members(&self, group: &str) -> Result<Vec<String>, SlackError> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiUserGroupsUsersListRequest::new(group.into());
        let listed = self.retrying("usergroups.users.list", || session.usergroups_users_list(&req)).await?;
        Ok(listed.users.into_iter().map(|u| u.to_string()).collect())
    }

    /// The app's own bot user id (`auth.test`), to tell its own messages.
    pub(super) async fn bot_user(&self) -> Result<Option<String>, SlackError> {
        let session = self.client.open_session(&self.token);
        let me = self.retrying("auth.test", || session.auth_test()).await?;
        Ok(me.bot_id.map(|b| b.to_string()))
    }
}
