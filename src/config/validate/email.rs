//! The `[email]` and `[imap]` sections: how support mail comes in.

use super::*;

impl Validator<'_> {
    pub(in crate::config) fn email(&mut self, mail_from: &str) -> EmailSettings {
        let mut own_addresses: Vec<String> = match self.get("email.own_addresses") {
            Some(Value::Array(items)) => {
                items.iter().filter_map(Value::as_str).map(|a| a.trim().to_lowercase()).collect()
            }
            _ => {
                self.bad("email.own_addresses", "expected a list of addresses");
                Vec::new()
            }
        };
        if let Ok(from) = mail_from.parse::<lettre::message::Mailbox>() {
            own_addresses.push(from.email.to_string().to_lowercase());
        }
        own_addresses.sort();
        own_addresses.dedup();
        let authserv = self.string("email.trusted_authserv_id").trim().to_string();
        EmailSettings {
            own_addresses,
            max_message_bytes: self.int("email.max_message_bytes", 1024, 1 << 30) as usize,
            answers_per_sender_per_day: self.int("email.answers_per_sender_per_day", 1, 10_000_000) as i64,
            answers_per_unproven_domain_per_day: self.int("email.answers_per_unproven_domain_per_day", 1, 10_000_000)
                as i64,
            answers_to_unproven_per_day: self.int("email.answers_to_unproven_per_day", 1, 10_000_000) as i64,
            trusted_authserv_id: (!authserv.is_empty()).then_some(authserv),
            verify_dkim: self.boolean("email.verify_dkim"),
            inbox_poll_interval: self.duration("email.inbox_poll_interval"),
            concurrency: self.int("email.concurrency", 1, 4096) as usize,
            imap: self.imap(),
        }
    }

    fn imap(&mut self) -> Option<ImapSettings> {
        let host = self.string("imap.host").trim().to_string();
        let port = self.int("imap.port", 1, 65535) as u16;
        let security = match self.string("imap.security").as_str() {
            "tls" => ImapSecurity::Tls,
            "plain" => ImapSecurity::Plain,
            other => {
                self.bad("imap.security", format!("{other:?} must be tls or plain (plain only on loopback)"));
                ImapSecurity::Tls
            }
        };
        let ca_file = self.string("imap.ca_file").trim().to_string();
        let ca_file = (!ca_file.is_empty()).then(|| std::path::PathBuf::from(ca_file));
        if let Some(path) = &ca_file {
            if !path.is_file() {
                self.bad("imap.ca_file", format!("{} is not a readable file", path.display()));
            }
        }
        let username = self.string("imap.username").trim().to_string();
        let password = self.secret("imap.password");
        let mailbox = self.nonempty("imap.mailbox");
        let processed = self.string("imap.processed_folder").trim().to_string();
        let settings = ImapSettings {
            host,
            port,
            security,
            ca_file,
            username,
            password,
            mailbox,
            processed_folder: (!processed.is_empty()).then_some(processed),
            idle: self.boolean("imap.idle"),
            poll_interval: self.duration("imap.poll_interval"),
            fetch_batch: self.int("imap.fetch_batch", 1, 10_000) as u32,
            reconnect_max: self.duration("imap.reconnect_max"),
        };
        if settings.host.is_empty() {
            return None;
        }
        if settings.username.is_empty() {
            self.bad("imap.username", "must be set when imap.host is");
        }
        if settings.password.is_none() {
            self.bad(
                "imap.password",
                format!("must be set (only from the environment: {})", env_name("imap.password")),
            );
        }
        Some(settings)
    }
}
