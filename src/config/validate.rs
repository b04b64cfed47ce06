//! Validation of the merged configuration tree: typed values read key by
//! key, every problem collected with the key it concerns.

use std::{collections::BTreeSet, fmt, time::Duration};

use serde_json::{Map, Value};

use super::*;

mod discord;
mod email;
mod http;
mod slack;

/// Reads typed values out of the merged tree, collecting every problem.
pub(super) struct Validator<'a> {
    tree: &'a Value,
    problems: &'a mut Vec<String>,
    seen: BTreeSet<String>,
}

impl<'a> Validator<'a> {
    pub(super) fn new(tree: &'a Value, problems: &'a mut Vec<String>) -> Self {
        Validator { tree, problems, seen: BTreeSet::new() }
    }

    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.seen.insert(key.to_string());
        lookup(self.tree, key)
    }

    fn bad(&mut self, key: &str, why: impl fmt::Display) {
        self.problems.push(format!("{key}: {why}"));
    }

    fn string(&mut self, key: &str) -> String {
        match self.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                self.bad(key, format!("expected text, found {other}"));
                String::new()
            }
            None => {
                self.bad(key, "missing");
                String::new()
            }
        }
    }

    fn nonempty(&mut self, key: &str) -> String {
        let s = self.string(key);
        if s.trim().is_empty() && lookup(self.tree, key).is_some() {
            self.bad(key, "must not be empty");
        }
        s
    }

    fn int(&mut self, key: &str, min: u64, max: u64) -> u64 {
        let n = match self.get(key) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => n,
            Some(n) => {
                self.bad(key, format!("{n} is out of range {min}..={max}"));
                min
            }
            None => {
                let found = lookup(self.tree, key).map(|v| v.to_string()).unwrap_or_else(|| "nothing".into());
                self.bad(key, format!("expected a whole number, found {found}"));
                min
            }
        }
    }

    fn duration(&mut self, key: &str) -> Duration {
        let text = self.string(key);
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.bad(key, "must be longer than zero");
                Duration::from_secs(1)
            }
            Err(e) => {
                if !text.is_empty() {
                    self.bad(key, format!("{text:?} is not a duration like \"30s\" or \"24h\": {e}"));
                }
                Duration::from_secs(1)
            }
        }
    }

    fn words(&mut self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().map(|s| s.trim().to_lowercase()) {
                        Some(s) if !s.is_empty() => out.push(s),
                        _ => self.bad(&format!("{key}[{i}]"), "expected a non-empty word"),
                    }
                }
                out
            }
            Some(Value::String(s)) => s.split(',').map(|w| w.trim().to_lowercase()).filter(|w| !w.is_empty()).collect(),
            _ => {
                self.bad(key, "expected a list of words");
                Vec::new()
            }
        }
    }

    pub(super) fn settings(mut self) -> Settings {
        let url = self.string("database.url");
        let url = url.trim();
        let url = if url.is_empty() {
            None
        } else {
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                self.bad("database.url", "must be empty (SQLite in the data folder), sqlite:… or postgres://…");
            }
            Some(url.to_string())
        };
        let database = DatabaseSettings {
            url,
            max_connections: self.int("database.max_connections", 1, 1000) as u32,
            sqlite_cache_mb: self.int("database.sqlite_cache_mb", 1, 65536) as u32,
            sqlite_writer_cache_mb: self.int("database.sqlite_writer_cache_mb", 1, 65536) as u32,
            sqlite_mmap_mb: self.int("database.sqlite_mmap_mb", 0, 1 << 20) as u32,
        };
        let engine = EngineSettings {
            flows_dir: self.string("engine.flows_dir").trim().to_string(),
            router_flow: self.nonempty("engine.router_flow"),
            idle_expiry: self.duration("engine.idle_expiry"),
            expiry_sweep_interval: self.duration("engine.expiry_sweep_interval"),
            turn_deadline: self.duration("engine.turn_deadline"),
            max_operations: self.int("engine.max_operations", 1_000, 1_000_000_000),
            max_call_depth: self.int("engine.max_call_depth", 4, 256) as usize,
            max_string_size: self.int("engine.max_string_size", 256, 16 << 20) as usize,
            max_array_size: self.int("engine.max_array_size", 16, 1 << 20) as usize,
            max_map_size: self.int("engine.max_map_size", 16, 1 << 20) as usize,
            max_flow_switches: self.int("engine.max_flow_switches", 1, 100) as usize,
            max_input_chars: self.int("engine.max_input_chars", 16, 100_000) as usize,
        };
        let words = Words {
            cancel: self.words("words.cancel"),
            restart: self.words("words.restart"),
            human: self.words("words.human"),
            help: self.words("words.help"),
        };
        let messages = Messages {
            apology: self.nonempty("messages.apology"),
            expired: self.nonempty("messages.expired"),
            cancelled: self.nonempty("messages.cancelled"),
            handoff: self.nonempty("messages.handoff"),
            handed_off_waiting: self.nonempty("messages.handed_off_waiting"),
            taken_over: self.nonempty("messages.taken_over"),
            handed_back: self.nonempty("messages.handed_back"),
            scheduled_waiting: self.nonempty("messages.scheduled_waiting"),
            help: self.nonempty("messages.help"),
            stale_reply: self.nonempty("messages.stale_reply"),
            unreadable: self.nonempty("messages.unreadable"),
            busy: self.nonempty("messages.busy"),
            mail_too_large: self.nonempty("messages.mail_too_large"),
        };
        let mail = self.mail();
        let email = self.email(&mail.from);
        let discord = self.discord();
        let slack = self.slack();
        let directory = DirectorySettings { show_full_names: self.boolean("directory.show_full_names") };
        let screening = self.screening();
        let limits = Limits {
            searches_per_identity: self.limit("limits.searches_per_identity"),
            searches_per_identifier: self.limit("limits.searches_per_identifier"),
            recovery_mails_per_contact: self.limit("limits.recovery_mails_per_contact"),
            email_codes_per_address: self.limit("limits.email_codes_per_address"),
            email_codes_per_identity: self.limit("limits.email_codes_per_identity"),
            creations_per_identity: self.limit("limits.creations_per_identity"),
            creations: self.limit("limits.creations"),
        };
        let account = AccountSettings { contact_request_ttl: self.duration("account.contact_request_ttl") };
        let http = self.http();
        let mut mail = mail;
        if !mail.contact_request_url_configured {
            mail.contact_request_url = super::decision_url(&http.public_url);
        }
        self.check_self_help();
        self.check_escalate();
        self.check_unknown_keys();
        let mut flow_settings = Map::new();
        for section in FLOW_SECTIONS {
            if let Some(v) = self.tree.get(*section) {
                flow_settings.insert(section.to_string(), v.clone());
            }
        }
        Settings {
            database,
            engine,
            words,
            messages,
            mail,
            email,
            discord,
            slack,
            directory,
            account,
            http,
            limits,
            screening,
            flow_settings: Value::Object(flow_settings),
        }
    }

    fn screening(&mut self) -> Screening {
        use crate::account::screening::{denied, regions};
        let rules_file = self.string("screening.regions_file").trim().to_string();
        let rules_text = if rules_file.is_empty() {
            Ok(regions::DEFAULT_RULES.to_string())
        } else {
            std::fs::read_to_string(&rules_file).map_err(|e| format!("{rules_file}: {e}"))
        };
        let rules = match rules_text.and_then(|t| regions::parse_rules(&t)) {
            Ok(rules) => rules,
            Err(e) => {
                self.bad("screening.regions_file", e);
                Vec::new()
            }
        };
        let mut embargoed = Vec::new();
        let mut in_force = Vec::new();
        for entry in self.words("screening.embargoed") {
            let (country, region) = match entry.split_once(':') {
                Some((c, r)) => (c.trim().to_uppercase(), Some(r.trim().to_string())),
                None => (entry.trim().to_uppercase(), None),
            };
            if crate::domain::Country::try_from(country.as_str()).is_err() {
                self.bad("screening.embargoed", format!("{entry:?} is not a country code or COUNTRY:Region"));
            }
            if let Some(name) = &region {
                // A region is in force under every addressing the rules know it by.
                let found: Vec<_> = rules.iter().filter(|r| r.name.eq_ignore_ascii_case(name)).cloned().collect();
                if !found.iter().any(|r| r.country == country) {
                    self.bad(
                        "screening.embargoed",
                        format!("{entry:?}: the regions file defines no region {name:?} of {country}"),
                    );
                }
                in_force.extend(found);
            }
            embargoed.push((country, region));
        }
        in_force.sort_by(|a, b| (&a.country, &a.name).cmp(&(&b.country, &b.name)));
        in_force.dedup_by(|a, b| a.country == b.country && a.name == b.name);
        let mut parties: Vec<(String, String)> =
            self.words("screening.denied_parties").into_iter().map(|n| (n, "config".to_string())).collect();
        let sdn_dir = self.string("screening.sdn_dir").trim().to_string();
        if !sdn_dir.is_empty() {
            match denied::load_sdn(std::path::Path::new(&sdn_dir)) {
                Ok(names) => parties.extend(names),
                Err(e) => self.bad("screening.sdn_dir", e),
            }
        }
        let review_countries: Vec<String> =
            self.words("screening.review_countries").into_iter().map(|c| c.to_uppercase()).collect();
        for c in &review_countries {
            if crate::domain::Country::try_from(c.as_str()).is_err() {
                self.bad("screening.review_countries", format!("{c:?} is not an ISO country code"));
            }
        }
        let float = |v: &mut Self, key: &str| match v.get(key).and_then(Value::as_f64) {
            Some(f) if (0.0..=1.0).contains(&f) => f,
            _ => {
                v.bad(key, "expected a number from 0 to 1");
                0.9
            }
        };
        let review_similarity = float(self, "screening.review_similarity");
        let match_similarity = float(self, "screening.match_similarity");
        if review_similarity > match_similarity {
            self.bad("screening.review_similarity", "must not be above screening.match_similarity");
        }
        Screening {
            embargoed,
            regions: std::sync::Arc::new(in_force),
            review_countries,
            denied: std::sync::Arc::new(denied::DeniedParties::new(parties)),
            review_similarity,
            match_similarity,
            review_delay: self.duration("screening.review_delay"),
        }
    }

    fn limit(&mut self, key: &str) -> Limit {
        let text = self.string(key);
        let parsed = text
            .split_once('/')
            .and_then(|(n, p)| Some((n.trim().parse::<i64>().ok()?, humantime::parse_duration(p.trim()).ok()?)));
        match parsed {
            Some((count, period)) if count > 0 && !period.is_zero() => Limit { count, period },
            _ => {
                self.bad(key, format!("{text:?} is not a limit like \"5/10m\""));
                Limit { count: 1, period: Duration::from_secs(1) }
            }
        }
    }

    fn boolean(&mut self, key: &str) -> bool {
        match self.get(key) {
            Some(Value::Bool(b)) => *b,
            other => {
                self.bad(
                    key,
                    format!("expected true or false, found {}", other.map_or("nothing".into(), |v| v.to_string())),
                );
                false
            }
        }
    }

    fn mail(&mut self) -> MailSettings {
        let from = self.nonempty("mail.from");
        if !from.is_empty() && from.parse::<lettre::message::Mailbox>().is_err() {
            self.bad("mail.from", format!("{from:?} is not a mail address like \"Name <user@example.com>\""));
        }
        let reset_url = self.nonempty("mail.reset_url");
        if !reset_url.contains("{token}") || url::Url::parse(&reset_url.replace("{token}", "x")).is_err() {
            self.bad("mail.reset_url", "must be a URL containing {token}");
        }
        let contact_request_url = self.string("mail.contact_request_url").trim().to_string();
        let contact_request_url_configured = !contact_request_url.is_empty();
        if contact_request_url_configured
            && (!contact_request_url.contains("{token}")
                || url::Url::parse(&contact_request_url.replace("{token}", "x")).is_err())
        {
            self.bad("mail.contact_request_url", "must be empty (this instance's page) or a URL containing {token}");
        }
        let host = self.string("smtp.host").trim().to_string();
        let port = self.int("smtp.port", 1, 65535) as u16;
        let security = match self.string("smtp.security").as_str() {
            "starttls" => SmtpSecurity::StartTls,
            "tls" => SmtpSecurity::Tls,
            "plain" => SmtpSecurity::Plain,
            other => {
                self.bad("smtp.security", format!("{other:?} must be starttls, tls or plain"));
                SmtpSecurity::StartTls
            }
        };
        let username = Some(self.string("smtp.username").trim().to_string()).filter(|u| !u.is_empty());
        let password = self.secret("smtp.password");
        MailSettings {
            from,
            templates_dir: self.string("mail.templates_dir").trim().to_string(),
            reset_url,
            contact_request_url,
            contact_request_url_configured,
            token_ttl: self.duration("mail.token_ttl"),
            max_attempts: self.int("mail.max_attempts", 1, 100) as u32,
            retry_base: self.duration("mail.retry_base"),
            smtp: (!host.is_empty()).then_some(SmtpSettings { host, port, security, username, password }),
        }
    }

    /// A secret key (only the environment layer can have set it; files
    /// naming it were refused earlier); empty means unset.
    fn secret(&mut self, key: &str) -> Option<Secret> {
        self.get(key).and_then(Value::as_str).filter(|p| !p.is_empty()).map(|p| Secret(p.to_string()))
    }

    fn table_list(&mut self, key: &str) -> Vec<&'a Map<String, Value>> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v.as_object() {
                    Some(m) => Some(m),
                    None => {
                        self.bad(&format!("{key}[{i}]"), "expected a table");
                        None
                    }
                })
                .collect(),
            _ => {
                self.bad(key, "expected a list of tables ([[...]])");
                Vec::new()
            }
        }
    }

    fn check_fields(&mut self, key: &str, item: &Map<String, Value>, fields: &[&str]) {
        for f in fields {
            match item.get(*f).and_then(Value::as_str) {
                Some(s) if !s.trim().is_empty() => {}
                _ => self.bad(&format!("{key}.{f}"), "missing or empty"),
            }
        }
    }

    fn check_self_help(&mut self) {
        let articles = self.table_list("self_help.articles");
        if articles.is_empty() {
            self.bad("self_help.articles", "at least one article is needed");
        }
        for (i, a) in articles.into_iter().enumerate() {
            let key = format!("self_help.articles[{i}]");
            self.check_fields(&key, a, &["id", "title", "url"]);
            if let Some(u) = a.get("url").and_then(Value::as_str) {
                if url::Url::parse(u).is_err() {
                    self.bad(&format!("{key}.url"), format!("{u:?} is not a URL"));
                }
            }
        }
    }

    fn check_escalate(&mut self) {
        let regions = self.table_list("escalate.regions");
        let mut defaults = 0;
        for (i, r) in regions.iter().enumerate() {
            let key = format!("escalate.regions[{i}]");
            self.check_fields(&key, r, &["name", "phone", "email", "hours"]);
            if r.get("default").and_then(Value::as_bool) == Some(true) {
                defaults += 1;
            }
            match r.get("countries").and_then(Value::as_array) {
                Some(codes) => {
                    for c in codes {
                        let ok = c.as_str().is_some_and(|c| crate::domain::Country::try_from(c).is_ok());
                        if !ok {
                            self.bad(&format!("{key}.countries"), format!("{c} is not an ISO 3166 alpha-2 code"));
                        }
                    }
                }
                None => self.bad(&format!("{key}.countries"), "expected a list of ISO country codes"),
            }
        }
        if defaults != 1 {
            self.bad("escalate.regions", format!("exactly one region must have default = true (found {defaults})"));
        }
    }

    /// Catches typos such as `engine.idle_expirey`, which would otherwise be
    /// silently ignored.
    fn check_unknown_keys(&mut self) {
        let Some(root) = self.tree.as_object() else {
            return;
        };
        // Sections read key by key here, where any other key is a typo, and
        // sections of lists or not yet read (channels to come).
        const KEYED: &[&str] = &[
            "database",
            "engine",
            "words",
            "messages",
            "mail",
            "smtp",
            "email",
            "imap",
            "discord",
            "slack",
            "directory",
            "account",
            "http",
            "limits",
            "screening",
        ];
        const OTHER: &[&str] = &["self_help", "escalate"];
        let mut unknown = Vec::new();
        for (section, body) in root {
            if !KEYED.contains(&section.as_str()) && !OTHER.contains(&section.as_str()) {
                unknown.push(section.clone());
                continue;
            }
            if KEYED.contains(&section.as_str()) {
                if let Some(map) = body.as_object() {
                    for k in map.keys() {
                        let full = format!("{section}.{k}");
                        if !self.seen.contains(&full) {
                            unknown.push(full);
                        }
                    }
                }
            }
        }
        for key in unknown {
            self.bad(&key, "unknown key");
        }
    }
}
