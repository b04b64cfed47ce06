//! Threading: which conversation a mail continues, and the answer that goes
//! back. Our Message-IDs carry the conversation's thread
//! (`fd-<thread>-<conversation>-<seq>@domain`), so a reply's `In-Reply-To`
//! or `References` finds it; the subject carries `[ref:<thread>]` for mail
//! clients that drop those headers.

use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::parse::ParsedMail;
use crate::{
    domain::EmailAddress,
    engine::{Delivery, Outbound, ReplySink},
    store::{outbox::NewMail, Write},
};

pub static THREAD_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s*\[ref:([0-9a-f]{16})\]").expect("thread tag pattern"));
static OUR_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^fd-([0-9a-f]{16})-\d+-\d+@").expect("message id pattern"));

/// Most earlier Message-IDs carried in `References:` (RFC 5322 allows
/// trimming the middle; the first and the latest matter).
const MAX_REFERENCES: usize = 12;

/// The thread a mail continues: from one of our Message-IDs it answers, or
/// the tag in its subject.
pub fn thread_of(mail: &ParsedMail) -> Option<String> {
    mail.replied_to
        .iter()
        .chain(&mail.references)
        .find_map(|id| OUR_ID.captures(id).map(|c| c[1].to_string()))
        .or_else(|| THREAD_TAG.captures(&mail.subject).map(|c| c[1].to_string()))
}

/// A new thread for a mail that starts a conversation: derived from the
/// mail's key, so handling the same mail again lands in the same thread.
pub fn new_thread(mail_key: &str) -> String {
    hex::encode(&Sha256::digest(mail_key.as_bytes())[..8])
}

/// Where and how to answer one inbound mail.
#[derive(Debug, Clone)]
pub struct Threading {
    pub thread: String,
    pub to: EmailAddress,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// The domain of our Message-IDs.
    pub domain: String,
}

impl Threading {
    pub fn for_mail(mail: &ParsedMail, thread: &str, to: &EmailAddress, from: &str) -> Threading {
        let clean = super::quotes::clean_subject(&mail.subject);
        let topic = if clean.is_empty() { "Your message".to_string() } else { clean };
        let mut references: Vec<String> = mail.references.iter().rev().cloned().collect();
        if let Some(id) = &mail.message_id {
            references.retain(|r| r != id);
            references.push(id.clone());
        }
        if references.len() > MAX_REFERENCES {
            let keep_first = references[0].clone();
            references.drain(..references.len() - (MAX_REFERENCES - 1));
            references.insert(0, keep_first);
        }
        Threading {
            thread: thread.to_string(),
            to: to.clone(),
            subject: format!("Re: {topic} [ref:{thread}]"),
            in_reply_to: mail.message_id.clone(),
            references,
            domain: crate::mail::domain_of(from).to_string(),
        }
    }

    /// The same answer under a subject of our own: for an address that has
    /// not proven itself, which must not get the writer's words from us.
    pub fn neutral(mut self) -> Threading {
        self.subject = format!("Your My Account request [ref:{}]", self.thread);
        self
    }

    /// A thread an agent starts: no mail of the customer's to answer yet.
    pub fn started_by_agent(thread: &str, to: &EmailAddress, from: &str) -> Threading {
        Threading {
            thread: thread.to_string(),
            to: to.clone(),
            subject: format!("Your My Account request [ref:{thread}]"),
            in_reply_to: None,
            references: Vec::new(),
            domain: crate::mail::domain_of(from).to_string(),
        }
    }

    fn message_id(&self, conversation_id: i64, seq: i64) -> String {
        format!("fd-{}-{conversation_id}-{seq}@{}", self.thread, self.domain)
    }

    /// The headers the outbox adds to the answer.
    pub fn headers(&self) -> Value {
        json!({
            "subject": self.subject,
            "in_reply_to": self.in_reply_to,
            "references": self.references,
            "auto_submitted": "auto-replied",
        })
    }

    /// One answer mail for a turn's replies.
    pub fn answer(&self, replies: &[Delivery]) -> Option<Write> {
        let first = replies.first()?;
        let messages: Vec<Value> = replies
            .iter()
            .filter_map(|d| match &d.message {
                Outbound::Text { text, .. } => Some(json!({ "text": text, "options": [] })),
                Outbound::Prompt { text, options, .. } => Some(json!({ "text": text, "options": options })),
                Outbound::Handoff { .. } => None,
            })
            .collect();
        let asks = replies.iter().any(|d| matches!(d.message, Outbound::Prompt { .. }));
        Some(Write::Mail(NewMail {
            message_id: self.message_id(first.conversation_id, first.seq),
            template: "reply".into(),
            to: self.to.clone(),
            context: json!({
                "messages": messages,
                "asks": asks,
                "subject": self.subject,
                "_headers": self.headers(),
            }),
        }))
    }

    /// A short answer that is not part of a conversation (a mail too big to
    /// read), with its own stable Message-ID.
    pub fn notice(&self, key: &str, text: &str) -> Write {
        Write::Mail(NewMail {
            message_id: format!("fd-{}-0-{}@{}", self.thread, &new_thread(key)[..8], self.domain),
            template: "reply".into(),
            to: self.to.clone(),
            context: json!({
                "messages": [{ "text": text, "options": [] }],
                "asks": false,
                "subject": self.subject,
                "_headers": self.headers(),
            }),
        })
    }

    /// The sink that turns a turn's replies into this answer.
    pub fn sink(self) -> ReplySink {
        let threading = Arc::new(self);
        ReplySink(Arc::new(move |replies| threading.answer(replies).into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(raw: &str) -> ParsedMail {
        super::super::parse::parse(raw.as_bytes(), 1 << 20)
    }

    #[test]
    fn replies_find_their_thread() {
        let thread = new_thread("first@acme.example");
        assert_eq!(thread.len(), 16);
        let by_header =
            mail(&format!("From: a@b.example\r\nIn-Reply-To: <fd-{thread}-7-3@frontdesk.example>\r\n\r\nx"));
        assert_eq!(thread_of(&by_header).as_deref(), Some(thread.as_str()));
        let by_subject = mail(&format!("From: a@b.example\r\nSubject: Re: help [ref:{thread}]\r\n\r\nx"));
        assert_eq!(thread_of(&by_subject).as_deref(), Some(thread.as_str()));
        assert_eq!(thread_of(&mail("From: a@b.example\r\nSubject: help\r\n\r\nx")), None);
    }

    #[test]
    fn answers_are_threaded() {
        let m = mail(
            "From: a@b.example\r\nSubject: Re: Re: help\r\nMessage-ID: <m2@b>\r\nReferences: <m0@b> <m1@b>\r\n\r\nx",
        );
        let t = Threading::for_mail(
            &m,
            "0123456789abcdef",
            &EmailAddress::parse("a@b.example").unwrap(),
            "My Account <ma@frontdesk.example>",
        );
        assert_eq!(t.subject, "Re: help [ref:0123456789abcdef]");
        assert_eq!(t.in_reply_to.as_deref(), Some("m2@b"));
        assert_eq!(t.references, vec!["m0@b", "m1@b", "m2@b"]);
        let replies = vec![Delivery {
            conversation_id: 5,
            seq: 1,
            message: Outbound::Prompt {
                text: "Which?".into(),
                options: vec!["A".into(), "B".into()],
                step: 0,
                private: true,
            },
        }];
        let Some(Write::Mail(NewMail { message_id, to, context, .. })) = t.answer(&replies) else { panic!() };
        assert_eq!(message_id, "fd-0123456789abcdef-5-1@frontdesk.example");
        assert_eq!(to, "a@b.example");
        assert_eq!(context["asks"], true);
        assert_eq!(context["messages"][0]["options"][1], "B");
    }
}
