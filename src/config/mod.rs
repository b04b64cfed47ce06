//! Layered configuration: embedded defaults (`config/default.toml`), then an
//! optional file given with `--config`, then `FRONTDESK__SECTION__KEY`
//! environment variables.
//!
//! The layers are merged into one tree first and validated afterwards, key by
//! key, so that a bad configuration reports *every* problem at once with the
//! key it concerns instead of stopping at the first serde error.
//!
//! Secrets (passwords, tokens) are accepted only from the environment: a file
//! is easy to commit by accident, an environment variable is not.

mod validate;

use std::{fmt, path::Path, time::Duration};

use validate::Validator;

use serde::Serialize;
use serde_json::{Map, Value};

/// The embedded defaults, compiled into the binary so it runs from anywhere.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

/// Keys whose values are secrets: never read from a file, never logged.
pub const SECRET_KEYS: &[&str] = &[
    "smtp.password",
    "imap.password",
    "discord.token",
    "slack.bot_token",
    "slack.app_token",
    "slack.signing_secret",
    "http.api_key",
];

/// Sections a flow may read with `setting("section.key")`. Nothing else of the
/// configuration (database URLs, limits, secrets) is visible to scripts.
pub const FLOW_SECTIONS: &[&str] = &["self_help", "escalate"];

/// A configuration that failed validation: one entry per problem.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl Settings {
    /// Completes what depends on the address `serve` listens on (when the
    /// configuration did not say): the public URL and, from it, the link of
    /// the contact-request decision page.
    pub fn served_at(&mut self, addr: std::net::SocketAddr) {
        if !self.http.public_url_configured {
            self.http.public_url = format!("http://{addr}");
        }
        if !self.mail.contact_request_url_configured {
            self.mail.contact_request_url = decision_url(&self.http.public_url);
        }
    }
}

/// The decision page's link under a public URL.
fn decision_url(public_url: &str) -> String {
    format!("{}/contact-requests/{{token}}", public_url.trim_end_matches('/'))
}

/// A secret value. Its `Debug` and `Display` never show the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    /// For values that arrive by code (tests, benchmarks), not by configuration.
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub engine: EngineSettings,
    pub words: Words,
    pub messages: Messages,
    pub mail: MailSettings,
    pub email: EmailSettings,
    /// `None`: Discord is off.
    pub discord: Option<DiscordSettings>,
    /// `None`: Slack is off.
    pub slack: Option<SlackSettings>,
    pub directory: DirectorySettings,
    pub account: AccountSettings,
    pub http: HttpSettings,
    pub limits: Limits,
    pub screening: Screening,
    /// The sections of [`FLOW_SECTIONS`], as flows see them.
    pub flow_settings: Value,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `None`: SQLite in the data folder.
    pub url: Option<String>,
    pub max_connections: u32,
    /// SQLite's page cache per reading connection and the writer's, and
    /// its memory-mapped reads.
    pub sqlite_cache_mb: u32,
    pub sqlite_writer_cache_mb: u32,
    pub sqlite_mmap_mb: u32,
}

impl DatabaseSettings {
    /// How the store is opened.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            max_connections: self.max_connections,
            sqlite_cache_mb: self.sqlite_cache_mb,
            sqlite_writer_cache_mb: self.sqlite_writer_cache_mb,
            sqlite_mmap_mb: self.sqlite_mmap_mb,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub flows_dir: String,
    pub router_flow: String,
    pub idle_expiry: Duration,
    pub expiry_sweep_interval: Duration,
    pub turn_deadline: Duration,
    pub max_operations: u64,
    pub max_call_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_flow_switches: usize,
    pub max_input_chars: usize,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub from: String,
    pub templates_dir: String,
    pub reset_url: String,
    /// `{token}` is the token; `{public_url}/contact-requests/{token}`
    /// (this instance's decision page) unless configured.
    pub contact_request_url: String,
    pub contact_request_url_configured: bool,
    pub token_ttl: Duration,
    pub max_attempts: u32,
    /// The first wait after a failed attempt; it doubles with each one.
    pub retry_base: Duration,
    /// `None`: no SMTP server; mails go to `<data>/mail/outbox/` as files.
    pub smtp: Option<SmtpSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    Plain,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// Support mail coming in (over IMAP, or from `<data>/mail/inbox/`).
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// Lower-case addresses that are ours (`mail.from`'s included): mail
    /// from them is never answered.
    pub own_addresses: Vec<String>,
    /// A bigger mail gets a short answer and is not read further.
    pub max_message_bytes: usize,
    /// Answers one address (sub-addresses counted as their mailbox) gets in 24 hours.
    pub answers_per_sender_per_day: i64,
    /// Answers in 24 hours to the addresses of one domain that have not
    /// proven themselves (no trusted authentication, not on record).
    pub answers_per_unproven_domain_per_day: i64,
    /// Answers in 24 hours to all such addresses together.
    pub answers_to_unproven_per_day: i64,
    /// `Authentication-Results` are believed only with this authserv-id.
    pub trusted_authserv_id: Option<String>,
    /// Verify DKIM and DMARC in-process (needs DNS).
    pub verify_dkim: bool,
    pub inbox_poll_interval: Duration,
    /// Mails handled at the same time.
    pub concurrency: usize,
    /// `None`: `serve` reads `<data>/mail/inbox/` instead.
    pub imap: Option<ImapSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapSecurity {
    Tls,
    Plain,
}

#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    /// Extra CA certificates (PEM) trusted for the server, besides the
    /// public roots: for a server with a private CA.
    pub ca_file: Option<std::path::PathBuf>,
    pub username: String,
    pub password: Option<Secret>,
    pub mailbox: String,
    /// Where handled mail is moved; `None` leaves it in place (flagged `\Seen`).
    pub processed_folder: Option<String>,
    /// Wait with IDLE when the server has it (else poll).
    pub idle: bool,
    pub poll_interval: Duration,
    pub fetch_batch: u32,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
}

/// The Discord bot (`[discord]`).
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub token: Secret,
    pub guild_id: u64,
    /// Channels where a message from a member starts or continues their conversation.
    pub support_channels: Vec<u64>,
    /// Members with one of these roles may use the agent commands.
    pub agent_roles: Vec<u64>,
    pub private: DiscordPrivate,
    /// Where the REST API and the gateway lookup are asked (a stand-in in
    /// tests); `None`: discord.com.
    pub api_url: Option<String>,
    /// A button click whose turn takes longer than this is acknowledged as
    /// deferred first (Discord drops interactions not answered in 3 s).
    pub ack_after: Duration,
    /// Tries per REST call before the customer is told it failed.
    pub send_attempts: u32,
    /// How often undelivered messages are looked for, and how old one must
    /// be to count as undelivered (younger ones may be on their way).
    pub redeliver_every: Duration,
    pub redeliver_after: Duration,
    /// A staff-only channel told when a conversation is handed off to a person.
    pub agent_channel: Option<u64>,
    pub texts: DiscordTexts,
}

/// The Slack app (`[slack]`).
#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub mode: SlackMode,
    pub bot_token: Secret,
    /// Socket Mode's app-level token (`xapp-…`).
    pub app_token: Option<Secret>,
    /// The Events API's signing secret.
    pub signing_secret: Option<Secret>,
    pub support_channels: Vec<String>,
    pub agent_groups: Vec<String>,
    pub agent_cache: Duration,
    pub private: SlackPrivate,
    pub agent_channel: Option<String>,
    /// `None`: https://slack.com/api.
    pub api_url: Option<String>,
    pub send_attempts: u32,
    pub redeliver_every: Duration,
    pub redeliver_after: Duration,
    pub texts: SlackTexts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackMode {
    /// An outbound WebSocket.
    Socket,
    /// Requests from Slack to serve's HTTP server.
    Events,
}

/// Where a conversation begun in a Slack support channel continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackPrivate {
    Dm,
    Ephemeral,
}

#[derive(Debug, Clone)]
pub struct SlackTexts {
    pub moved_to_dm: String,
    pub send_failed: String,
    pub not_agent: String,
    pub not_yours: String,
}

/// Where a conversation begun in a public support channel continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscordPrivate {
    /// A private thread of the support channel, with the member in it.
    Thread,
    /// Direct messages with the member.
    Dm,
}

/// Fixed texts of the Discord channel; none of them may hold personal data,
/// as some are posted in public.
#[derive(Debug, Clone)]
pub struct DiscordTexts {
    /// Public: `{thread}` becomes a link to the member's private thread.
    pub moved_to_thread: String,
    pub moved_to_dm: String,
    /// Public: the member's DMs are closed to the bot.
    pub dm_refused: String,
    /// Public or private: a reply could not be sent.
    pub send_failed: String,
    /// To a member who used an agent command without an agent role.
    pub not_agent: String,
    /// To someone who clicked a button in another member's conversation.
    pub not_yours: String,
}

/// At most `count` in any `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub count: i64,
    pub period: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub searches_per_identity: Limit,
    pub searches_per_identifier: Limit,
    pub recovery_mails_per_contact: Limit,
    /// Codes proving an address, per address and per identity asking.
    pub email_codes_per_address: Limit,
    pub email_codes_per_identity: Limit,
    /// Accounts one identity may create.
    pub creations_per_identity: Limit,
    /// Accounts created through the assistant altogether.
    pub creations: Limit,
}

/// Trade-embargo screening of new accounts.
#[derive(Debug, Clone)]
pub struct Screening {
    /// `(country, region)`: the region is `None` for a whole country.
    pub embargoed: Vec<(String, Option<String>)>,
    /// The embargoed regions in force, from the rules file.
    pub regions: std::sync::Arc<Vec<crate::account::screening::regions::Compiled>>,
    pub review_countries: Vec<String>,
    /// `screening.denied_parties` and the SDN list of `screening.sdn_dir`.
    pub denied: std::sync::Arc<crate::account::screening::denied::DeniedParties>,
    pub review_similarity: f64,
    pub match_similarity: f64,
    pub review_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct DirectorySettings {
    pub show_full_names: bool,
}

/// `serve`'s HTTP face (`[http]`).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where `serve` listens; port 0 takes any free port (the address
    /// bound is logged and printed).
    pub listen: std::net::SocketAddr,
    /// What links in mails start with (no trailing slash): the configured
    /// value, else `http://` and the address bound.
    pub public_url: String,
    pub public_url_configured: bool,
    /// The key the identity system presents to redeem reset tokens
    /// (`Authorization: Bearer …`); `None`: the token API is off.
    pub api_key: Option<Secret>,
    /// Requests larger than this are refused (413).
    pub body_limit: usize,
    /// A request that takes longer is answered 408.
    pub request_timeout: Duration,
    /// Calls of the token API one client address may make.
    pub api_rate: Limit,
}

/// Account changes customers ask for (`[account]`).
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// How long an administrator's approve/decline link works; then the
    /// request expires and the requester is told.
    pub contact_request_ttl: Duration,
}

/// Words that work in any flow.
#[derive(Debug, Clone, Serialize)]
pub struct Words {
    pub cancel: Vec<String>,
    pub restart: Vec<String>,
    pub human: Vec<String>,
    pub help: Vec<String>,
}

/// Fixed texts the engine itself says (flows say everything else).
#[derive(Debug, Clone)]
pub struct Messages {
    pub apology: String,
    pub expired: String,
    pub cancelled: String,
    pub handoff: String,
    pub handed_off_waiting: String,
    pub taken_over: String,
    pub handed_back: String,
    pub scheduled_waiting: String,
    pub help: String,
    pub stale_reply: String,
    pub unreadable: String,
    pub busy: String,
    pub mail_too_large: String,
}

impl Settings {
    /// Loads defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// [`Settings::load`] with `overrides` (`("email.concurrency", "512")`)
    /// as the last layer, validated like any other: what the benchmarks set,
    /// so that their settings can be reproduced from the environment.
    pub fn load_with(file: Option<&Path>, overrides: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        env.extend(overrides.iter().map(|(key, value)| (env_name(key), value.to_string())));
        Self::load_from(file, &env)
    }

    /// Like [`Settings::load`] with an explicit environment, for tests.
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Settings, ConfigError> {
        let mut problems = Vec::new();
        let mut tree = parse_toml("embedded defaults", DEFAULTS, &mut problems);
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let layer = parse_toml(&path.display().to_string(), &text, &mut problems);
                    for key in SECRET_KEYS {
                        if lookup(&layer, key).is_some() {
                            problems.push(format!(
                                "{key}: secrets are read only from the environment; remove it from {} and set {}",
                                path.display(),
                                env_name(key)
                            ));
                        }
                    }
                    merge(&mut tree, layer);
                }
                Err(e) => problems.push(format!("--config {}: cannot read: {e}", path.display())),
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("FRONTDESK__") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(|p| p.is_empty()) {
                problems.push(format!("{name}: malformed variable name"));
                continue;
            }
            set_path(&mut tree, &path, parse_env_value(value));
        }
        let settings = Validator::new(&tree, &mut problems).settings();
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// The SQLite URL for a data folder, used when `database.url` is empty.
    pub fn database_url(&self, data_dir: &Path) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", data_dir.join("frontdesk.db").display()),
        }
    }
}

/// `smtp.password` → `FRONTDESK__SMTP__PASSWORD`.
pub fn env_name(key: &str) -> String {
    format!("FRONTDESK__{}", key.replace('.', "__").to_ascii_uppercase())
}

/// Hides the password of a database URL for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn parse_toml(origin: &str, text: &str, problems: &mut Vec<String>) -> Value {
    match toml::from_str::<toml::Value>(text) {
        Ok(v) => serde_json::to_value(v).unwrap_or(Value::Null),
        Err(e) => {
            problems.push(format!("{origin}: not valid TOML: {}", e.message()));
            Value::Object(Map::new())
        }
    }
}

/// Environment values are strings; numbers and booleans are recognised so
/// that `FRONTDESK__ENGINE__MAX_OPERATIONS=1000` works.
fn parse_env_value(v: &str) -> Value {
    if let Ok(n) = v.parse::<i64>() {
        return Value::from(n);
    }
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(v.to_string()),
    }
}

fn merge(base: &mut Value, layer: Value) {
    match (base, layer) {
        (Value::Object(b), Value::Object(l)) => {
            for (k, v) in l {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, l) => *b = l,
    }
}

fn set_path(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for (i, part) in path.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().expect("made an object above");
        if i + 1 == path.len() {
            map.insert(part.clone(), value);
            return;
        }
        node = map.entry(part.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
}

fn lookup<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(tree, |node, part| node.get(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = Settings::load_from(None, &[]).expect("defaults load");
        assert_eq!(s.engine.idle_expiry, Duration::from_secs(24 * 3600));
        assert!(s.database.url.is_none());
        assert_eq!(s.flow_settings["self_help"]["articles"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn discord_is_off_by_default_and_checked_key_by_key_when_on() {
        assert!(Settings::load_from(None, &[]).unwrap().discord.is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("discord.toml");
        std::fs::write(
            &path,
            "[discord]\nguild_id = \"123\"\nsupport_channels = [456, \"789\"]\nagent_roles = [\"x1\"]\nprivate = \"email\"\nack_after = \"5s\"\n",
        )
        .unwrap();
        let text = Settings::load_from(Some(&path), &[]).unwrap_err().to_string();
        for needle in [
            "discord.agent_roles: \"x1\" is not a Discord id",
            "discord.private: \"email\" must be thread or dm",
            "discord.ack_after: must leave time",
            "discord.token: must be set (only from the environment: FRONTDESK__DISCORD__TOKEN)",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        let env: Vec<(String, String)> = [
            ("FRONTDESK__DISCORD__GUILD_ID", "123"),
            ("FRONTDESK__DISCORD__SUPPORT_CHANNELS", "456,789"),
            ("FRONTDESK__DISCORD__AGENT_ROLES", "42"),
            ("FRONTDESK__DISCORD__TOKEN", "secret-token"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let d = Settings::load_from(None, &env).unwrap().discord.unwrap();
        assert!(!format!("{d:?}").contains("secret-token"));
        assert_eq!((d.guild_id, d.support_channels, d.agent_roles), (123, vec![456, 789], vec![42]));
        assert_eq!((d.private, d.api_url, d.agent_channel), (DiscordPrivate::Thread, None, None));
    }

    #[test]
    fn environment_overrides_files() {
        let env = vec![
            ("FRONTDESK__ENGINE__MAX_OPERATIONS".to_string(), "12345".to_string()),
            ("FRONTDESK__DATABASE__URL".to_string(), "postgres://u:pw@127.0.0.1/x".to_string()),
        ];
        let s = Settings::load_from(None, &env).unwrap();
        assert_eq!(s.engine.max_operations, 12345);
        assert_eq!(redact_url(s.database.url.as_deref().unwrap()), "postgres://u:***@127.0.0.1/x");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "[engine]\nidle_expiry = \"soon\"\nmax_operations = -3\nidle_expirey = \"1h\"\n[smtp]\npassword = \"hunter2\"\n",
        )
        .unwrap();
        let env = vec![("FRONTDESK__DATABASE__URL".to_string(), "mysql://x".to_string())];
        let err = Settings::load_from(Some(&path), &env).unwrap_err();
        let text = err.to_string();
        for needle in [
            "engine.idle_expiry",
            "engine.max_operations",
            "engine.idle_expirey: unknown key",
            "smtp.password",
            "database.url",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert!(!text.contains("hunter2"), "a secret leaked into the error: {text}");
    }
}
