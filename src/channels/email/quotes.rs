//! What a customer newly wrote in a mail: earlier messages quoted below (or
//! above) it and signatures are cut off, because the engine must answer the
//! customer's words, not our own question quoted back at us.

use std::sync::LazyLock;

use regex::Regex;

/// Lines that introduce a quoted earlier message, in the languages mail
/// clients write them in. Everything from such a line on is the quote.
static QUOTE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*(
            on\s.{1,200}\swrote:\s*$ |
            le\s.{1,200}\sa\s[ée]crit\s?:\s*$ |
            am\s.{1,200}\sschrieb\s?.{0,100}:\s*$ |
            el\s.{1,200}\sescribi[óo]:\s*$ |
            -{2,}\s*original\s+message\s*-{2,} |
            -{2,}\s*forwarded\s+message\s*-{2,} |
            -{2,}\s*urspr[üu]ngliche\s+nachricht\s*-{2,} |
            _{20,} |
            begin\s+forwarded\s+message:
        )",
    )
    .expect("quote header pattern")
});

/// An Outlook-style header block ("From: … / Sent: …") that starts a quote.
static OUTLOOK_FROM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*\*?(from|von|de|van)\s*:\*?\s+\S").expect("outlook pattern"));
static OUTLOOK_NEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*\*?(sent|date|gesendet|envoy[ée]|to|an|[àa])\s*:").expect("outlook pattern"));

/// Sign-offs mobile clients add on their own.
static DEVICE_SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(sent from my |sent from (outlook|mail) for |get outlook for |envoy[ée] de mon |von meinem )")
        .expect("device signature pattern")
});

/// The new text of a mail body: no quoted lines, no quote introduction and
/// what follows it, no signature, no surrounding blank lines.
pub fn new_text(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        // "On Mon, 3 May 2026 at 10:00, Ann <ann@x> wrote:" is often wrapped.
        let joined = lines.get(i + 1).map(|next| format!("{line} {}", next.trim()));
        if QUOTE_HEADER.is_match(line)
            || joined.as_deref().is_some_and(|j| j.len() < 300 && QUOTE_HEADER.is_match(j) && !line.is_empty())
                && lines[i + 1].trim_end().ends_with(':')
        {
            break;
        }
        if OUTLOOK_FROM.is_match(line) && lines.get(i + 1).is_some_and(|n| OUTLOOK_NEXT.is_match(n)) {
            break;
        }
        // RFC 3676 signature delimiter, and the common variant without the space.
        if line == "--" || lines[i] == "-- " || DEVICE_SIGNATURE.is_match(line) {
            break;
        }
        if !line.trim_start().starts_with('>') {
            kept.push(line);
        }
        i += 1;
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    let start = kept.iter().position(|l| !l.trim().is_empty()).unwrap_or(kept.len());
    kept[start..].join("\n")
}

/// A customer's answer in a reply: the first paragraph of the new text,
/// after a greeting line ("Hi," / "Hello team,") if there is one.
pub fn answer(new_text: &str) -> String {
    let mut paragraphs = new_text.split("\n\n").map(str::trim).filter(|p| !p.is_empty());
    let Some(mut first) = paragraphs.next() else {
        return String::new();
    };
    if is_greeting(first) {
        match paragraphs.next() {
            Some(next) => first = next,
            None => return String::new(),
        }
    } else if let Some((head, rest)) = first.split_once('\n') {
        if is_greeting(head) {
            first = rest.trim();
        }
    }
    first.split('\n').map(str::trim).collect::<Vec<_>>().join(" ")
}

fn is_greeting(line: &str) -> bool {
    let line = line.trim();
    let words = line.split_whitespace().count();
    let lower = line.to_lowercase();
    line.ends_with(',')
        && words <= 4
        && ["hi", "hello", "dear", "hey", "good morning", "good afternoon", "bonjour", "hallo", "guten tag"]
            .iter()
            .any(|g| lower.starts_with(g))
}

/// A subject without reply and forward prefixes and without our thread tag.
pub fn clean_subject(subject: &str) -> String {
    static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^\s*((re|fwd?|aw|wg|sv|vs|tr|rif|antw)\s*(\[\d+\])?\s*:\s*)+").expect("prefix pattern")
    });
    let s = super::reply::THREAD_TAG.replace_all(subject, "");
    PREFIX.replace(s.trim(), "").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_replies_and_signatures_are_cut() {
        let body = "2\n\nThanks!\n-- \nAnn Lee\nACME\n";
        assert_eq!(new_text(body), "2\n\nThanks!");
        let gmail = "Yes please\r\n\r\nOn Mon, 3 May 2026 at 10:00, My Account <myaccount@frontdesk.example>\r\nwrote:\r\n> Which one?\r\n> 1. Ann\r\n";
        assert_eq!(new_text(gmail), "Yes please");
        let outlook = "ann@acme.example\n\nFrom: My Account <myaccount@frontdesk.example>\nSent: Monday\nTo: Ann\nSubject: x\n\nWhich one?";
        assert_eq!(new_text(outlook), "ann@acme.example");
        assert_eq!(new_text("> all quoted\n> here"), "");
        assert_eq!(new_text("1\n\nSent from my iPhone"), "1");
        assert_eq!(new_text("Merci\n\nLe lun. 3 mai 2026 à 10:00, My Account a écrit :\n> x"), "Merci");
    }

    #[test]
    fn the_answer_is_the_first_paragraph_after_a_greeting() {
        assert_eq!(answer("Hi,\n\n2\n\nThanks, Ann"), "2");
        assert_eq!(answer("Hello team,\nann@acme.example\n\nBest"), "ann@acme.example");
        assert_eq!(answer("12 Main Street\nSpringfield"), "12 Main Street Springfield");
        assert_eq!(answer(""), "");
    }

    #[test]
    fn subjects_lose_prefixes_and_tags() {
        assert_eq!(clean_subject("Re: AW: Fwd: Login help [ref:0123456789abcdef]"), "Login help");
        assert_eq!(clean_subject("RE[2]: password"), "password");
        assert_eq!(clean_subject("Regarding my account"), "Regarding my account");
    }
}
