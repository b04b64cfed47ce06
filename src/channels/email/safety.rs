//! Mail that must not be answered (RFC 3834 §2 and helpdesk practice):
//! answering a machine starts a mail loop, answering a list spams it, and
//! answering a forged bounce hits an innocent third party.

use super::parse::ParsedMail;
use crate::config::EmailSettings;

/// Why a mail was recorded and not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    AutoSubmitted(String),
    Precedence(String),
    MailingList,
    Bounce,
    Report,
    OwnAddress,
    MailerDaemon,
    ResponseSuppressed,
    NoSender,
    Unreadable,
    DailyCap,
    /// Too many answers to unproven addresses of one domain today.
    DomainCap,
    /// Too many answers to unproven addresses today.
    UnprovenCap,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::AutoSubmitted(v) => write!(f, "automatic mail (Auto-Submitted: {v})"),
            Skip::Precedence(v) => write!(f, "bulk mail (Precedence: {v})"),
            Skip::MailingList => f.write_str("mailing-list mail (List-Id)"),
            Skip::Bounce => f.write_str("bounce (empty Return-Path)"),
            Skip::Report => f.write_str("delivery or read report"),
            Skip::OwnAddress => f.write_str("sent from one of our own addresses"),
            Skip::MailerDaemon => f.write_str("sent by a mailer daemon"),
            Skip::ResponseSuppressed => f.write_str("sender asked for no automatic answer (X-Auto-Response-Suppress)"),
            Skip::NoSender => f.write_str("no usable sender address"),
            Skip::Unreadable => f.write_str("not a readable mail"),
            Skip::DailyCap => f.write_str("daily answer limit for this address reached"),
            Skip::DomainCap => f.write_str("daily answer limit for unproven addresses of this domain reached"),
            Skip::UnprovenCap => f.write_str("daily answer limit for unproven addresses reached"),
        }
    }
}

impl Skip {
    /// A short machine-readable reason for the mail record.
    pub fn code(&self) -> &'static str {
        match self {
            Skip::AutoSubmitted(_) => "auto_submitted",
            Skip::Precedence(_) => "precedence",
            Skip::MailingList => "mailing_list",
            Skip::Bounce => "bounce",
            Skip::Report => "report",
            Skip::OwnAddress => "own_address",
            Skip::MailerDaemon => "mailer_daemon",
            Skip::ResponseSuppressed => "response_suppressed",
            Skip::NoSender => "no_sender",
            Skip::Unreadable => "unreadable",
            Skip::DailyCap => "daily_cap",
            Skip::DomainCap => "domain_cap",
            Skip::UnprovenCap => "unproven_cap",
        }
    }
}

/// The first reason this mail must not be answered, if any (the daily cap is
/// checked separately: it needs the store).
pub fn check(mail: &ParsedMail, settings: &EmailSettings) -> Option<Skip> {
    if mail.unreadable {
        return Some(Skip::Unreadable);
    }
    let h = &mail.loop_headers;
    if let Some(v) = &h.auto_submitted {
        if !v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("no") {
            return Some(Skip::AutoSubmitted(v.chars().take(60).collect()));
        }
    }
    if h.null_return_path {
        return Some(Skip::Bounce);
    }
    if h.report {
        return Some(Skip::Report);
    }
    if let Some(v) = &h.precedence {
        let v = v.trim().to_ascii_lowercase();
        if ["bulk", "list", "junk", "auto_reply"].contains(&v.as_str()) {
            return Some(Skip::Precedence(v));
        }
    }
    if h.list_id.is_some() {
        return Some(Skip::MailingList);
    }
    if let Some(v) = &h.x_auto_response_suppress {
        let suppressed =
            v.split(',').map(|t| t.trim().to_ascii_lowercase()).any(|t| t == "all" || t == "autoreply" || t == "oof");
        if suppressed {
            return Some(Skip::ResponseSuppressed);
        }
    }
    let Some(from) = mail.reply_to.as_deref().or(mail.from.as_deref()) else {
        return Some(Skip::NoSender);
    };
    for address in [Some(from), mail.from.as_deref()].into_iter().flatten() {
        if settings.own_addresses.iter().any(|own| own == address) {
            return Some(Skip::OwnAddress);
        }
        let local = address.split('@').next().unwrap_or("");
        if ["mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply", "bounce", "bounces"]
            .iter()
            .any(|d| local.eq_ignore_ascii_case(d) || local.to_ascii_lowercase().starts_with(&format!("{d}+")))
        {
            return Some(Skip::MailerDaemon);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EmailSettings {
        crate::config::Settings::load_from(None, &[]).unwrap().email
    }

    fn mail(headers: &str) -> ParsedMail {
        let raw = format!("From: ann@acme.example\r\nSubject: hi\r\n{headers}\r\nhello");
        super::super::parse::parse(raw.as_bytes(), 1 << 20)
    }

    #[test]
    fn machines_are_not_answered() {
        let s = settings();
        assert_eq!(check(&mail(""), &s), None);
        assert_eq!(check(&mail("Auto-Submitted: no\r\n"), &s), None);
        assert!(matches!(check(&mail("Auto-Submitted: auto-replied\r\n"), &s), Some(Skip::AutoSubmitted(_))));
        assert!(matches!(
            check(&mail("Auto-Submitted: auto-generated; owner-email=x@y\r\n"), &s),
            Some(Skip::AutoSubmitted(_))
        ));
        assert_eq!(check(&mail("Return-Path: <>\r\n"), &s), Some(Skip::Bounce));
        assert_eq!(check(&mail("Return-Path: <ann@acme.example>\r\n"), &s), None);
        assert!(matches!(check(&mail("Precedence: Bulk\r\n"), &s), Some(Skip::Precedence(_))));
        assert_eq!(check(&mail("List-Id: <x.lists.example>\r\n"), &s), Some(Skip::MailingList));
        assert_eq!(check(&mail("X-Auto-Response-Suppress: DR, AutoReply\r\n"), &s), Some(Skip::ResponseSuppressed));
        assert_eq!(check(&mail("X-Auto-Response-Suppress: DR\r\n"), &s), None);
        let daemon = super::super::parse::parse(b"From: MAILER-DAEMON@mx.example\r\n\r\nx", 1 << 20);
        assert_eq!(check(&daemon, &s), Some(Skip::MailerDaemon));
        let own = super::super::parse::parse(b"From: My Account <myaccount@frontdesk.example>\r\n\r\nx", 1 << 20);
        assert_eq!(check(&own, &s), Some(Skip::OwnAddress));
        let nobody = super::super::parse::parse(b"Subject: x\r\n\r\nx", 1 << 20);
        assert_eq!(check(&nobody, &s), Some(Skip::NoSender));
    }
}
