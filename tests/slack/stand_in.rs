//! A Slack stand-in on loopback: the Web API methods frontdesk calls (an
//! HTTP server recording every call, `response_url`s included) and a Socket
//! Mode endpoint (WebSocket: `hello`, envelopes on demand, acknowledgements
//! recorded, `disconnect` on demand). It drives the real slack-morphism
//! client: see ../shared/notes/slack-stand-in.md for the facts it rests on.
#![allow(dead_code)]

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_tungstenite::tungstenite::Message as Ws;

pub const BOT_TOKEN: &str = "xoxb-stand-in";
pub const APP_TOKEN: &str = "xapp-stand-in";
pub const TEAM: &str = "T0STANDIN";
pub const APP: &str = "A0STANDIN";
pub const AGENTS: &str = "S0AGENTS";

/// One Web API call (or `response_url` post) the stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `chat.postMessage`, …, or `response_url`.
    pub method: String,
    pub body: Value,
    pub auth: Option<String>,
    /// The `ts` the stand-in gave a posted message.
    pub ts: String,
}

impl Call {
    /// Everything the call would show, as one string (text and blocks).
    pub fn shown(&self) -> String {
        self.body.to_string()
    }

    pub fn channel(&self) -> &str {
        self.body["channel"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    base: String,
    ws_url: String,
    calls: Mutex<Vec<Call>>,
    acks: Mutex<Vec<Value>>,
    agents: Mutex<Vec<String>>,
    /// (method, times): answered 429 with `Retry-After: 1` this many times.
    rate_limits: Mutex<Vec<(String, usize)>>,
    /// (method, delay): calls of `method` are recorded, then answered this
    /// much later (a slow Slack, to hold a send open).
    slow: Mutex<Vec<(String, Duration)>>,
    connection: Mutex<Option<mpsc::UnboundedSender<Ws>>>,
    connections: AtomicUsize,
    ts: AtomicU64,
}

#[derive(Clone)]
pub struct StandIn {
    /// What frontdesk's `slack.api_url` points at.
    pub api_url: String,
    pub base: String,
    state: Arc<State>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind the Web API");
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind Socket Mode");
        let base = format!("http://{}", http.local_addr().unwrap());
        let state = Arc::new(State {
            base: base.clone(),
            ws_url: format!("ws://{}/link", socket.local_addr().unwrap()),
            ts: AtomicU64::new(1_700_000_000_000_100),
            ..State::default()
        });
        tokio::spawn(serve_api(http, state.clone()));
        tokio::spawn(serve_socket(socket, state.clone()));
        StandIn { api_url: format!("{base}/api"), base, state }
    }

    pub fn set_agents(&self, agents: &[&str]) {
        *self.state.agents.lock().unwrap() = agents.iter().map(|a| a.to_string()).collect();
    }

    /// The next `times` calls of `method` get 429 with `Retry-After: 1`.
    pub fn rate_limit(&self, method: &str, times: usize) {
        self.state.rate_limits.lock().unwrap().push((method.to_string(), times));
    }

    /// Calls of `method` are answered `delay` after they arrive.
    pub fn slow(&self, method: &str, delay: Duration) {
        self.state.slow.lock().unwrap().push((method.to_string(), delay));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Waits until `n` calls match, and returns them.
    pub async fn wait_calls(&self, what: &str, n: usize, f: impl Fn(&Call) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<Call> = self.calls().into_iter().filter(&f).collect();
            if found.len() >= n {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; calls: {:#?}", self.calls());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_call(&self, what: &str, f: impl Fn(&Call) -> bool) -> Call {
        self.wait_calls(what, 1, f).await.swap_remove(0)
    }

    /// How many Socket Mode connections were made so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    pub async fn wait_connections(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.connections() < n || self.state.connection.lock().unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no Socket Mode connection #{n}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The acknowledgement of an envelope, once it came.
    pub async fn ack(&self, envelope: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(a) = self.state.acks.lock().unwrap().iter().find(|a| a["envelope_id"] == envelope) {
                return a.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "envelope {envelope} was never acknowledged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn send(&self, frame: Value) {
        let connection = self.state.connection.lock().unwrap().clone().expect("a Socket Mode connection");
        connection.send(Ws::Text(frame.to_string())).expect("the connection is open");
    }

    /// A new message timestamp.
    pub fn ts(&self) -> String {
        let n = self.state.ts.fetch_add(1, Ordering::SeqCst);
        format!("{}.{:06}", n / 1_000_000, n % 1_000_000)
    }

    /// Sends an `events_api` envelope over Socket Mode; returns its id.
    pub fn push(&self, envelope: &str, event: Value, retry_attempt: u32) {
        self.send(json!({
            "type": "events_api", "envelope_id": envelope, "accepts_response_payload": false,
            "retry_attempt": retry_attempt, "retry_reason": if retry_attempt > 0 { "timeout" } else { "" },
            "payload": callback(event),
        }));
    }

    pub fn interact(&self, envelope: &str, payload: Value) {
        self.send(json!({ "type": "interactive", "envelope_id": envelope, "accepts_response_payload": false,
                          "payload": payload }));
    }

    pub fn command(&self, envelope: &str, payload: Value) {
        self.send(json!({ "type": "slash_commands", "envelope_id": envelope, "accepts_response_payload": true,
                          "payload": payload }));
    }

    /// Asks the client to reconnect, as Slack does before it restarts a server.
    pub fn disconnect(&self) {
        self.send(json!({ "type": "disconnect", "reason": "refresh_requested",
                          "debug_info": { "host": "stand-in" } }));
    }

    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.base)
    }
}

/// An event callback as Slack wraps an event.
pub fn callback(event: Value) -> Value {
    let id = format!("Ev{}", event["ts"].as_str().unwrap_or("0").replace('.', ""));
    json!({ "type": "event_callback", "team_id": TEAM, "api_app_id": APP, "event_id": id,
            "event_time": 1_700_000_000, "event": event })
}

/// A member's message event.
pub fn message(user: &str, channel: &str, ts: &str, text: &str) -> Value {
    let channel_type = if channel.starts_with('D') { "im" } else { "channel" };
    json!({ "type": "message", "user": user, "channel": channel, "channel_type": channel_type, "ts": ts,
            "text": text })
}

/// A `block_actions` payload for a click on a button (`value`) or an option.
pub fn click(user: &str, channel: &str, message_ts: &str, action_id: &str, value: &str, response_url: &str) -> Value {
    let kind = if action_id.ends_with(":s") { "static_select" } else { "button" };
    let mut action =
        json!({ "type": kind, "action_id": action_id, "block_id": "b1", "action_ts": format!("{message_ts}9") });
    if kind == "button" {
        action["value"] = json!(value);
    } else {
        action["selected_option"] = json!({ "text": { "type": "plain_text", "text": "x" }, "value": value });
    }
    json!({ "type": "block_actions", "team": { "id": TEAM }, "user": { "id": user }, "api_app_id": APP,
            "trigger_id": "t1", "container": { "type": "message", "message_ts": message_ts, "channel_id": channel },
            "channel": { "id": channel }, "response_url": response_url, "actions": [action] })
}

/// A `/frontdesk` payload.
pub fn slash(user: &str, channel: &str, text: &str, response_url: &str) -> Value {
    json!({ "team_id": TEAM, "channel_id": channel, "user_id": user, "command": "/frontdesk", "text": text,
            "response_url": response_url, "trigger_id": "t1" })
}

fn json_response(v: Value) -> Response<Full<Bytes>> {
    Response::builder().header("content-type", "application/json").body(Full::new(Bytes::from(v.to_string()))).unwrap()
}

/// A call's parameters: a JSON body, a form, or the query string.
fn parameters(query: Option<&str>, body: &[u8]) -> Value {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v;
    }
    let text = if body.is_empty() { query.unwrap_or_default().as_bytes() } else { body };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text).into_owned().collect();
    Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

async fn answer(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let method = match path.strip_prefix("/api/") {
        Some(m) => m.to_string(),
        None if path.starts_with("/response/") => "response_url".to_string(),
        None => return Ok(Response::builder().status(404).body(Full::new(Bytes::new())).unwrap()),
    };
    {
        let mut limits = state.rate_limits.lock().unwrap();
        if let Some(limit) = limits.iter_mut().find(|(m, times)| *m == method && *times > 0) {
            limit.1 -= 1;
            return Ok(Response::builder()
                .status(429)
                .header("retry-after", "1")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(r#"{"ok":false,"error":"ratelimited"}"#)))
                .unwrap());
        }
    }
    let params = parameters(query.as_deref(), &body);
    let ts = {
        let n = state.ts.fetch_add(1, Ordering::SeqCst);
        format!("{}.{:06}", n / 1_000_000, n % 1_000_000)
    };
    state.calls.lock().unwrap().push(Call { method: method.clone(), body: params.clone(), auth, ts: ts.clone() });
    let channel = params["channel"].as_str().unwrap_or("C0").to_string();
    let delay = state.slow.lock().unwrap().iter().find(|(m, _)| *m == method).map(|(_, d)| *d);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    Ok(json_response(match method.as_str() {
        "auth.test" => {
            json!({ "ok": true, "url": "https://standin.slack.com/", "team": "Stand-in", "user": "frontdesk",
                               "team_id": TEAM, "user_id": "U0FRONTDESK", "bot_id": "B0FRONTDESK" })
        }
        "apps.connections.open" => json!({ "ok": true, "url": state.ws_url }),
        "chat.postMessage" => json!({ "ok": true, "channel": channel, "ts": ts,
                                       "message": { "ts": ts, "text": params["text"] } }),
        "chat.postEphemeral" => json!({ "ok": true, "message_ts": ts }),
        "chat.update" => json!({ "ok": true, "channel": channel, "ts": params["ts"], "text": params["text"] }),
        "conversations.open" => {
            let user = params["users"]
                .as_array()
                .and_then(|u| u.first())
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| params["users"].as_str().map(str::to_string))
                .unwrap_or_default();
            json!({ "ok": true, "channel": { "id": format!("D{}", user.trim_start_matches('U')) } })
        }
        "usergroups.users.list" => json!({ "ok": true, "users": *state.agents.lock().unwrap() }),
        "response_url" => json!({ "ok": true }),
        other => json!({ "ok": false, "error": format!("unknown_method {other}") }),
    }))
}

async fn serve_api(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(state.clone(), req));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn serve_socket(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
            let (mut sink, mut source) = ws.split();
            let (tx, mut rx) = mpsc::unbounded_channel();
            let hello = json!({ "type": "hello", "num_connections": 1, "connection_info": { "app_id": APP },
                                "debug_info": { "host": "stand-in" } });
            if sink.send(Ws::Text(hello.to_string())).await.is_err() {
                return;
            }
            *state.connection.lock().unwrap() = Some(tx);
            state.connections.fetch_add(1, Ordering::SeqCst);
            loop {
                tokio::select! {
                    frame = rx.recv() => {
                        let Some(frame) = frame else { break };
                        let disconnect = matches!(&frame, Ws::Text(t) if t.contains("\"disconnect\""));
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                        if disconnect {
                            // Slack closes the old connection soon after.
                            *state.connection.lock().unwrap() = None;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            let _ = sink.send(Ws::Close(None)).await;
                            break;
                        }
                    }
                    incoming = source.next() => match incoming {
                        Some(Ok(Ws::Text(text))) => {
                            if let Ok(ack) = serde_json::from_str::<Value>(&text) {
                                state.acks.lock().unwrap().push(ack);
                            }
                        }
                        Some(Ok(Ws::Ping(p))) => { let _ = sink.send(Ws::Pong(p)).await; }
                        Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => break,
                        _ => {}
                    },
                }
            }
        });
    }
}
