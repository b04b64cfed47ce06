//! From raw RFC 5322 bytes to what the channel needs: who wrote, what they
//! newly wrote, which of our mails they answer, and the headers that decide
//! whether a mail may be answered at all.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders as _};
use sha2::{Digest as _, Sha256};

use crate::domain::EmailAddress;

/// Headers read in full from a mail over the size cap; its body is not read.
const HEADER_LIMIT: usize = 256 * 1024;

#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    /// What makes this mail "the same mail": its Message-ID, or a hash of the
    /// raw bytes when it has none.
    pub key: String,
    pub message_id: Option<String>,
    /// Lower-case address from `From:`; `None` when there is none usable.
    pub from: Option<EmailAddress>,
    /// Where answers go: `Reply-To:` if set, else `From:`.
    pub reply_to: Option<EmailAddress>,
    /// As written, with reply prefixes (for our `Re:`).
    pub subject: String,
    /// Message-IDs from `In-Reply-To:` and `References:`, newest first.
    pub replied_to: Vec<String>,
    pub references: Vec<String>,
    /// The new text of the body (quotes and signature cut), HTML as text.
    pub text: String,
    pub loop_headers: LoopHeaders,
    pub authentication_results: Vec<String>,
    /// Over the size cap: only headers were read.
    pub oversized: bool,
    /// The raw mail could not be read as a message at all.
    pub unreadable: bool,
}

/// Headers that say a mail was written by a machine (RFC 3834 and practice).
#[derive(Debug, Clone, Default)]
pub struct LoopHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: Option<String>,
    /// `Return-Path: <>`: a bounce (delivery status notification).
    pub null_return_path: bool,
    pub x_auto_response_suppress: Option<String>,
    /// `Content-Type: multipart/report` (delivery and read reports).
    pub report: bool,
}

pub fn parse(raw: &[u8], max_bytes: usize) -> ParsedMail {
    let oversized = raw.len() > max_bytes;
    let input = if oversized { header_block(raw) } else { raw };
    let fallback_key = || format!("sha256:{}", hex::encode(Sha256::digest(raw)));
    let Some(message) = MessageParser::default().parse(input) else {
        return ParsedMail { key: fallback_key(), oversized, unreadable: true, ..Default::default() };
    };
    let message_id = message.message_id().map(clean_id).filter(|id| usable_id(id));
    let address = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| a.trim().to_lowercase())
            .filter(|a| valid_address(a))
            .and_then(|a| EmailAddress::parse(&a).ok())
    };
    let from = address(message.from());
    let reply_to = address(message.reply_to()).or_else(|| from.clone());
    let text_header = |name: &str| message.header_raw(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let loop_headers = LoopHeaders {
        auto_submitted: text_header("Auto-Submitted"),
        precedence: text_header("Precedence"),
        list_id: text_header("List-Id"),
        null_return_path: message
            .header_raw("Return-Path")
            .is_some_and(|v| v.trim().trim_start_matches('<').trim_end_matches('>').trim().is_empty()),
        x_auto_response_suppress: text_header("X-Auto-Response-Suppress"),
        report: message.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        }),
    };
    let authentication_results = message
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, value)| value.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let text = if oversized {
        String::new()
    } else {
        message.body_text(0).map(|t| super::quotes::new_text(&t)).unwrap_or_default()
    };
    ParsedMail {
        key: message_id.clone().unwrap_or_else(fallback_key),
        message_id,
        from,
        reply_to,
        subject: message.subject().map(one_line).unwrap_or_default(),
        replied_to: ids(message.in_reply_to()),
        references: ids(message.references()).into_iter().rev().collect(),
        text,
        loop_headers,
        authentication_results,
        oversized,
        unreadable: false,
    }
}

/// The header block of a raw mail (up to the first empty line), capped.
fn header_block(raw: &[u8]) -> &[u8] {
    let cap = &raw[..raw.len().min(HEADER_LIMIT)];
    let end = cap.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let end = end.or_else(|| cap.windows(2).position(|w| w == b"\n\n").map(|p| p + 2));
    &cap[..end.unwrap_or(cap.len())]
}

fn ids(value: &HeaderValue) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|id| usable_id(id))
    .collect()
}

/// A Message-ID we may store and echo into our own headers: nothing that
/// could end a header line or open another id.
fn usable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 250
        && !id.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

fn clean_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string()
}

/// Header text on one line: a CR or LF in a decoded name or subject must
/// never reach a header we write.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn valid_address(a: &str) -> bool {
    a.len() <= 254 && !a.contains(['\r', '\n', '<', '>', ' ', ',']) && email_address::EmailAddress::is_valid(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_mail() {
        let raw = b"From: Ann Lee <Ann@Acme.example>\r\nTo: support@frontdesk.example\r\nSubject: Re: I forgot my password\r\n\
Message-ID: <abc@acme.example>\r\nIn-Reply-To: <fd-0123456789abcdef-1-2@frontdesk.example>\r\n\
References: <a@x> <fd-0123456789abcdef-1-2@frontdesk.example>\r\n\r\nHello,\r\n\r\nmy login\r\n\r\n> quoted\r\n";
        let m = parse(raw, 1 << 20);
        assert_eq!(m.key, "abc@acme.example");
        assert_eq!(m.from.as_deref(), Some("ann@acme.example"));
        assert_eq!(m.subject, "Re: I forgot my password");
        assert_eq!(m.replied_to, vec!["fd-0123456789abcdef-1-2@frontdesk.example"]);
        assert_eq!(m.references, vec!["fd-0123456789abcdef-1-2@frontdesk.example", "a@x"]);
        assert_eq!(m.text, "Hello,\n\nmy login");
        assert!(!m.oversized && !m.unreadable);
    }

    #[test]
    fn html_only_charsets_and_encoded_words() {
        let raw = "From: =?ISO-8859-1?Q?J=F6rg?= <jorg@example.de>\r\nSubject: =?UTF-8?B?UGFzc3dvcnQgdmVyZ2Vzc2Vu?=\r\n\
Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>Gr=FC=DFe <b>bitte</b></p>";
        let m = parse(raw.as_bytes(), 1 << 20);
        assert_eq!(m.subject, "Passwort vergessen");
        assert!(m.text.contains("Grüße") && m.text.contains("bitte"), "{:?}", m.text);
        assert!(!m.text.contains('<'), "{:?}", m.text);
    }

    #[test]
    fn machine_mail_is_recognised() {
        let raw = b"From: MAILER-DAEMON@mx.example\r\nReturn-Path: <>\r\nAuto-Submitted: auto-replied\r\nPrecedence: bulk\r\n\
List-Id: <news.example>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x--\r\n";
        let m = parse(raw, 1 << 20);
        let h = &m.loop_headers;
        assert!(h.null_return_path && h.report);
        assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(h.precedence.as_deref(), Some("bulk"));
        assert_eq!(h.list_id.as_deref(), Some("<news.example>"));
    }

    #[test]
    fn hostile_input_is_contained() {
        // A CRLF smuggled into a decoded display name or subject stays on one line.
        let raw = b"From: =?UTF-8?Q?Eve=0D=0ABcc:_x@y?= <eve@evil.example>\r\nSubject: =?UTF-8?Q?hi=0D=0ABcc:_x@y?=\r\n\r\nhi";
        let m = parse(raw, 1 << 20);
        assert!(!m.subject.contains('\n') && !m.subject.contains('\r'), "{:?}", m.subject);
        assert_eq!(m.from.as_deref(), Some("eve@evil.example"));
        // No headers at all, binary junk, and an empty mail.
        for junk in [&b""[..], &b"\x00\xff\xfe garbage"[..], &b"\r\n\r\n"[..]] {
            let m = parse(junk, 1 << 20);
            assert!(m.from.is_none(), "{junk:?}");
            assert!(!m.key.is_empty());
        }
        // Oversized: headers only.
        let mut big = b"From: a@b.example\r\nSubject: big\r\nMessage-ID: <big@b>\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 5000));
        let m = parse(&big, 1024);
        assert!(m.oversized && m.text.is_empty());
        assert_eq!(m.key, "big@b");
    }

    #[test]
    fn a_message_id_with_a_line_break_is_not_kept() {
        // Encoded or folded, a CR/LF or space inside the id would be echoed
        // into our In-Reply-To and References.
        for id in ["<a\r\nBcc: x@y>", "<=?UTF-8?Q?a=0D=0ABcc:_x@y?=>", "<a b@c>", "<a\u{7}@b>"] {
            let raw = format!("From: a@b.example\r\nMessage-ID: {id}\r\n\r\nhi");
            let m = parse(raw.as_bytes(), 1 << 20);
            if let Some(kept) = &m.message_id {
                assert!(!kept.chars().any(|c| c.is_whitespace() || c.is_control()), "{id:?} kept as {kept:?}");
            }
            assert!(!m.key.chars().any(|c| c.is_whitespace() || c.is_control()), "{id:?} keyed as {:?}", m.key);
        }
    }
}
