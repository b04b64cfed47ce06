//! A Discord stand-in on loopback: the REST endpoints frontdesk calls (an
//! HTTP server recording every request) and a gateway (WebSocket: Hello,
//! Identify → READY, Resume → RESUMED, heartbeats, dispatches on demand).
//! It drives the real serenity client: see ../shared/notes/discord-stand-in.md
//! for the facts this is built on.
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
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_tungstenite::tungstenite::{
    protocol::{frame::coding::CloseCode, CloseFrame},
    Message as Ws,
};

pub const TOKEN: &str = "stand-in-token";
pub const BOT: u64 = 900_000_000_000_000_001;
pub const APP: u64 = 900_000_000_000_000_002;
pub const GUILD: u64 = 900_000_000_000_000_003;

/// One REST call the stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Without the `/api/v10` prefix.
    pub path: String,
    pub body: Value,
    pub auth: Option<String>,
    /// What the stand-in answered.
    pub status: u16,
}

enum Frame {
    Text(String),
    Close(u16),
}

/// A failure to answer instead of the real response.
struct Failure {
    method: &'static str,
    path_contains: String,
    status: u16,
    code: u64,
    times: usize,
}

#[derive(Default)]
struct State {
    ws_url: String,
    calls: Mutex<Vec<Call>>,
    failures: Mutex<Vec<Failure>>,
    /// (method, path part, delay, times): slow answers.
    delays: Mutex<Vec<(&'static str, String, Duration, usize)>>,
    connection: Mutex<Option<mpsc::UnboundedSender<Frame>>>,
    seq: AtomicU64,
    next_id: AtomicU64,
    identifies: AtomicUsize,
    resumes: AtomicUsize,
}

#[derive(Clone)]
pub struct StandIn {
    /// What frontdesk's `discord.api_url` points at.
    pub api_url: String,
    state: Arc<State>,
}

impl StandIn {
    pub async fn start() -> StandIn {
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind REST");
        let gateway = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
        let state = Arc::new(State {
            ws_url: format!("ws://{}", gateway.local_addr().unwrap()),
            next_id: AtomicU64::new(950_000_000_000_000_000),
            ..State::default()
        });
        let api_url = format!("http://{}", http.local_addr().unwrap());
        tokio::spawn(serve_rest(http, state.clone()));
        tokio::spawn(serve_gateway(gateway, state.clone()));
        StandIn { api_url, state }
    }

    /// Every REST call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Waits until a REST call matches, and returns it.
    pub async fn wait_call(&self, what: &str, f: impl Fn(&Call) -> bool) -> Call {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(c) = self.calls().into_iter().find(&f) {
                return c;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; calls: {:#?}", self.calls());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` calls match.
    pub async fn wait_calls(&self, what: &str, n: usize, f: impl Fn(&Call) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<Call> = self.calls().into_iter().filter(&f).collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {n} × {what} (have {}); calls: {:#?}",
                found.len(),
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next `times` calls of `method` whose path contains `path` fail
    /// with `status` and Discord's JSON error `code`.
    pub fn fail(&self, method: &'static str, path: &str, status: u16, code: u64, times: usize) {
        self.state.failures.lock().unwrap().push(Failure {
            method,
            path_contains: path.to_string(),
            status,
            code,
            times,
        });
    }

    /// The next `times` calls of `method` whose path contains `path` are
    /// answered after `delay` (a slow Discord).
    pub fn delay(&self, method: &'static str, path: &str, delay: Duration, times: usize) {
        self.state.delays.lock().unwrap().push((method, path.to_string(), delay, times));
    }

    pub fn identifies(&self) -> usize {
        self.state.identifies.load(Ordering::SeqCst)
    }

    pub fn resumes(&self) -> usize {
        self.state.resumes.load(Ordering::SeqCst)
    }

    /// Waits for a live gateway session (after READY or RESUMED).
    pub async fn connected(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.state.connection.lock().unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no gateway session");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a dispatch (op 0) on the live session.
    pub async fn dispatch(&self, event: &str, d: Value) {
        self.connected().await;
        let seq = self.state.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let frame = json!({ "op": 0, "t": event, "s": seq, "d": d }).to_string();
        let tx = self.state.connection.lock().unwrap().clone().expect("connected");
        tx.send(Frame::Text(frame)).expect("gateway connection alive");
    }

    /// Closes the live session with code 4000 (unknown error, may resume),
    /// as Discord does now and then.
    pub fn drop_connection(&self) {
        if let Some(tx) = self.state.connection.lock().unwrap().take() {
            let _ = tx.send(Frame::Close(4000));
        }
    }
}

async fn serve_rest(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(rest(state, req).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn json_response(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn no_content() -> Response<Full<Bytes>> {
    Response::builder().status(204).body(Full::new(Bytes::new())).unwrap()
}

/// A message as Discord returns it, with the fields serenity requires.
pub fn message_object(id: u64, channel: &str, author: Value, content: &str) -> Value {
    json!({
        "id": id.to_string(), "channel_id": channel, "author": author, "content": content,
        "timestamp": "2026-11-27T10:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
        "pinned": false, "type": 0,
    })
}

pub fn bot_user() -> Value {
    json!({ "id": BOT.to_string(), "username": "frontdesk", "discriminator": "0", "avatar": null, "bot": true })
}

async fn rest(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req.uri().path().strip_prefix("/api/v10").unwrap_or(req.uri().path()).to_string();
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let delay = {
        let mut delays = state.delays.lock().unwrap();
        delays.iter_mut().find(|d| d.0 == method && path.contains(&d.1) && d.3 > 0).map(|d| {
            d.3 -= 1;
            d.2
        })
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let response = answer(&state, &method, &path, &body);
    let status = response.status().as_u16();
    state.calls.lock().unwrap().push(Call { method, path, body, auth, status });
    response
}

fn answer(state: &State, method: &str, path: &str, body: &Value) -> Response<Full<Bytes>> {
    {
        let mut failures = state.failures.lock().unwrap();
        if let Some(f) =
            failures.iter_mut().find(|f| f.method == method && path.contains(&f.path_contains) && f.times > 0)
        {
            f.times -= 1;
            return json_response(f.status, json!({ "message": "stand-in failure", "code": f.code }));
        }
    }
    let id = || state.next_id.fetch_add(1, Ordering::SeqCst);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["gateway"]) => json_response(200, json!({ "url": state.ws_url })),
        ("PUT", ["applications", _, "guilds", _, "commands"]) => json_response(200, json!([])),
        ("POST", ["channels", channel, "messages"]) => {
            let content = body["content"].as_str().unwrap_or_default();
            json_response(200, message_object(id(), channel, bot_user(), content))
        }
        ("POST", ["channels", parent, "threads"]) => json_response(
            201,
            json!({
                "id": id().to_string(), "type": 12, "guild_id": GUILD.to_string(), "parent_id": parent,
                "name": body["name"], "owner_id": BOT.to_string(), "message_count": 0, "member_count": 1,
                "thread_metadata": { "archived": false, "auto_archive_duration": 10080, "archive_timestamp": "2026-11-27T10:00:00.000000+00:00", "locked": false, "invitable": false },
                "rate_limit_per_user": 0, "flags": 0, "position": 0, "nsfw": false, "permission_overwrites": [],
            }),
        ),
        ("PUT", ["channels", _, "thread-members", _]) => no_content(),
        ("POST", ["users", "@me", "channels"]) => json_response(
            200,
            json!({
                "id": id().to_string(), "type": 1, "last_message_id": null,
                "recipients": [{ "id": body["recipient_id"], "username": "member", "discriminator": "0", "avatar": null }],
            }),
        ),
        ("POST", ["interactions", _, _, "callback"]) => no_content(),
        ("PATCH", ["webhooks", _, _, "messages", "@original"]) => {
            json_response(200, message_object(id(), "0", bot_user(), body["content"].as_str().unwrap_or_default()))
        }
        _ => json_response(404, json!({ "message": "404: Not Found", "code": 0 })),
    }
}

async fn serve_gateway(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        tokio::spawn(gateway_session(stream, state.clone()));
    }
}

async fn gateway_session(stream: tokio::net::TcpStream, state: Arc<State>) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
    let (mut sink, mut source) = ws.split();
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": 45000 } });
    if sink.send(Ws::Text(hello.to_string())).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    loop {
        tokio::select! {
            frame = source.next() => {
                let Some(Ok(frame)) = frame else { break };
                let Ws::Text(text) = frame else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                let op = v["op"].as_u64().unwrap_or(u64::MAX);
                let reply = match op {
                    1 => Some(json!({ "op": 11 })),
                    2 => {
                        assert_eq!(v["d"]["token"], format!("Bot {TOKEN}"), "Identify carries the bot token");
                        state.identifies.fetch_add(1, Ordering::SeqCst);
                        let seq = state.seq.fetch_add(1, Ordering::SeqCst) + 1;
                        Some(json!({ "op": 0, "t": "READY", "s": seq, "d": {
                            "v": 10, "user": bot_user(),
                            "guilds": [{ "id": GUILD.to_string(), "unavailable": true }],
                            "session_id": "stand-in-session", "resume_gateway_url": state.ws_url,
                            "application": { "id": APP.to_string(), "flags": 0 },
                        }}))
                    }
                    6 => {
                        assert_eq!(v["d"]["session_id"], "stand-in-session", "Resume names the session");
                        state.resumes.fetch_add(1, Ordering::SeqCst);
                        let seq = state.seq.fetch_add(1, Ordering::SeqCst) + 1;
                        Some(json!({ "op": 0, "t": "RESUMED", "s": seq, "d": {} }))
                    }
                    _ => None,
                };
                if let Some(reply) = reply {
                    if sink.send(Ws::Text(reply.to_string())).await.is_err() {
                        break;
                    }
                    if op == 2 || op == 6 {
                        *state.connection.lock().unwrap() = Some(tx.clone());
                    }
                }
            }
            out = rx.recv() => match out {
                Some(Frame::Text(text)) => {
                    if sink.send(Ws::Text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Frame::Close(code)) => {
                    let _ = sink.send(Ws::Close(Some(CloseFrame { code: CloseCode::from(code), reason: "stand-in".into() }))).await;
                    break;
                }
                None => break,
            },
        }
    }
}
