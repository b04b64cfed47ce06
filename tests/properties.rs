//! Properties over random inputs (proptest; cargo-fuzz needs a nightly
//! toolchain this project does not use). Each target runs a few thousand
//! cases in a plain `cargo test`; the ignored `a_million_cases_each` runs
//! 1,000,000 per target:
//!
//! ```sh
//! cargo test --release --test properties -- --ignored
//! ```
//!
//! Targets: mail ingest from raw bytes, choice matching, CSV records,
//! transcript parsing, and template rendering of customer text.

mod common;

use std::sync::LazyLock;

use frontdesk::{
    channels::email::{parse, reply, safety},
    config::Settings,
    directory::records::Records,
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};

/// Cases per target in a plain `cargo test`.
const DEFAULT_CASES: u32 = 3_000;
/// Cases per target in the ignored long run.
const LONG_CASES: u32 = 1_000_000;

static SETTINGS: LazyLock<Settings> = LazyLock::new(common::settings);

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------- mail

/// Header values an attacker would try: line breaks (raw and encoded),
/// angle brackets, encoded words, long and empty values.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "[a-z]{1,8}(\r\n|\n|\r)(Bcc|X-Injected|To): [a-z@.]{1,20}",
        "=\\?UTF-8\\?Q\\?[a-zA-Z_=0-9]{0,30}\\?=",
        "=\\?UTF-8\\?B\\?[A-Za-z0-9+/]{0,40}={0,2}\\?=",
        "<[ -~]{0,30}>( <[ -~]{0,30}>){0,3}",
        "\\PC{0,30}",
    ]
}

fn raw_mail() -> impl Strategy<Value = Vec<u8>> {
    let headers = proptest::collection::vec(
        (
            prop_oneof![
                Just("From"),
                Just("Reply-To"),
                Just("Subject"),
                Just("Message-ID"),
                Just("In-Reply-To"),
                Just("References"),
                Just("Content-Type"),
                Just("Auto-Submitted"),
                Just("X-Anything"),
            ],
            header_value(),
        ),
        0..8,
    );
    let body = proptest::collection::vec(any::<u8>(), 0..200);
    (headers, body, any::<bool>()).prop_map(|(headers, body, crlf)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut raw = Vec::new();
        for (name, value) in headers {
            raw.extend(format!("{name}: {value}{eol}").into_bytes());
        }
        raw.extend(eol.as_bytes());
        raw.extend(body);
        raw
    })
}

fn clean_id(id: &str) -> bool {
    !id.is_empty() && !id.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

fn mail_ingest(cases: u32) {
    run(cases, prop_oneof![raw_mail(), proptest::collection::vec(any::<u8>(), 0..400)], |raw| {
        let mail = parse::parse(&raw, 1 << 16);
        prop_assert!(!mail.key.is_empty());
        prop_assert!(!mail.subject.contains(['\r', '\n']), "subject {:?}", mail.subject);
        for id in mail.message_id.iter().chain(&mail.replied_to).chain(&mail.references) {
            prop_assert!(clean_id(id), "id {:?}", id);
        }
        for a in mail.from.iter().chain(&mail.reply_to) {
            prop_assert!(!a.contains(['\r', '\n', '<', '>', ' ', ',']), "address {:?}", a);
        }
        // What of it reaches the headers we write.
        let to =
            mail.reply_to.clone().unwrap_or_else(|| frontdesk::domain::EmailAddress::parse("a@b.example").unwrap());
        let t = reply::Threading::for_mail(&mail, "0123456789abcdef", &to, "My Account <m@frontdesk.example>");
        let headers = t.headers();
        prop_assert!(!t.subject.contains(['\r', '\n']));
        for id in t.in_reply_to.iter().chain(&t.references) {
            prop_assert!(clean_id(id), "echoed id {:?}", id);
        }
        let values = std::iter::once(&headers["subject"])
            .chain(std::iter::once(&headers["in_reply_to"]))
            .chain(headers["references"].as_array().into_iter().flatten());
        for v in values.filter_map(|v| v.as_str()) {
            prop_assert!(!v.contains(['\r', '\n']), "header value {:?}", v);
        }
        Ok(())
    });
}

/// Mail from machines (auto-replies, bounces, lists, reports) is never answered.
fn loop_prone_mail(cases: u32) {
    let loop_header = prop_oneof![
        Just("Auto-Submitted: auto-replied".to_string()),
        Just("Auto-Submitted: auto-generated".to_string()),
        "Precedence: (bulk|list|junk)",
        "List-Id: <[a-z]{1,10}\\.example>",
        Just("Return-Path: <>".to_string()),
        Just("Content-Type: multipart/report; report-type=delivery-status; boundary=x".to_string()),
        Just("X-Auto-Response-Suppress: All".to_string()),
    ];
    run(cases, (loop_header, header_value(), "[a-z]{1,10}"), |(header, subject, user)| {
        let raw = format!("From: {user}@customer.example\r\n{header}\r\nSubject: {subject}\r\n\r\nhello\r\n");
        let mail = parse::parse(raw.as_bytes(), 1 << 16);
        prop_assert!(safety::check(&mail, &SETTINGS.email).is_some(), "answered: {}", raw);
        Ok(())
    });
}

// ---------------------------------------------------------------- choices

const WORDS: &[&str] = &[
    "user", "name", "email", "address", "sales", "contract", "number", "license", "serial", "machine", "code",
    "legacy", "self", "help", "articles", "customer", "service", "create", "new", "account", "search", "another",
];

fn options() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(proptest::collection::vec(proptest::sample::select(WORDS), 1..4), 2..7).prop_map(|opts| {
        let mut out: Vec<String> = Vec::new();
        for words in opts {
            let o = words.join(" ");
            if !out.contains(&o) {
                out.push(o);
            }
        }
        out
    })
}

fn choices(cases: u32) {
    let case = (options(), any::<prop::sample::Index>(), 0u8..5, any::<prop::sample::Index>());
    run(cases, case, |(opts, pick, how, at)| {
        if opts.len() < 2 {
            return Ok(());
        }
        let i = pick.index(opts.len());
        let meant = &opts[i];
        let answer = match how {
            // Its number, as people type numbers.
            0 => format!("{}", i + 1),
            1 => format!(" #{}. ", i + 1),
            // Its text, in another case, with punctuation around it.
            2 => format!("{}!", meant.to_uppercase()),
            // One letter of it dropped.
            3 => {
                let k = at.index(meant.len());
                let mut s = meant.clone();
                if s.is_char_boundary(k) && s.len() > 1 {
                    s.remove(k);
                }
                s
            }
            // Two neighbouring letters swapped.
            _ => {
                let b = meant.as_bytes().to_vec();
                let k = at.index(b.len().max(2) - 1);
                let mut b = b;
                if k + 1 < b.len() {
                    b.swap(k, k + 1);
                }
                String::from_utf8(b).unwrap()
            }
        };
        match frontdesk::text::parse_choice(&answer, &opts) {
            Ok(j) => prop_assert_eq!(j, i, "{:?} picked {:?} from {:?}", answer, opts[j], opts),
            // Refusing an unclear answer is allowed, for typed text; a
            // number or the exact words must always work.
            Err(e) => prop_assert!(how >= 3, "{:?} refused among {:?}: {}", answer, opts, e),
        }
        // A number out of range never picks anything.
        let beyond = (opts.len() + 1).to_string();
        prop_assert!(frontdesk::text::parse_choice(&beyond, &opts).is_err(), "{} picked something", beyond);
        Ok(())
    });
}

// ---------------------------------------------------------------- CSV

fn field() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9 .-]{0,12}", "[a-z]{1,5}, [a-z]{1,5}", "[a-z]{1,4}\"[a-z]{1,4}", "\\PC{0,8}"]
}

fn csv_records(cases: u32) {
    let rows = proptest::collection::vec(proptest::collection::vec(field(), 3), 1..20);
    let damage = (any::<prop::sample::Index>(), 0u8..3);
    run(cases, (rows, damage), |(rows, (at, kind))| {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        for r in &rows {
            w.write_record(r).unwrap();
        }
        let text = w.into_inner().unwrap();
        let mut lines: Vec<Vec<u8>> = text.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        // The writer never breaks a field over lines here (no newlines in
        // fields), so line n is record n.
        prop_assert_eq!(lines.len(), rows.len());
        let bad = at.index(lines.len());
        match kind {
            0 => lines[bad].insert(0, 0xff),
            1 => lines[bad].insert(0, b'"'),
            _ => {}
        }
        let input: Vec<u8> = lines.concat();
        let mut records = Records::new(&input[..]);
        let mut seen = Vec::new();
        while let Some((line, record)) = records.next_record().unwrap() {
            seen.push((line, record.map(|r| r.iter().map(str::to_string).collect::<Vec<_>>())));
        }
        // Every record but the damaged one is read back, whole, on its line;
        // the damaged one may be refused or read as whatever it now says.
        for (n, row) in rows.iter().enumerate() {
            if kind != 2 && n == bad {
                continue;
            }
            let line = n as u64 + 1;
            let found = seen.iter().find(|(l, _)| *l == line);
            prop_assert_eq!(found.map(|(_, r)| r.clone()), Some(Ok(row.clone())), "line {} of {:?}", line, input);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------- transcripts

fn transcript_parsing(cases: u32) {
    let line = prop_oneof![
        "> \\PC{0,20}",
        "< \\PC{0,20}",
        "@(as|advance|status|import|expire|jobs)( \\PC{0,10})?",
        "! mail( [a-z]+=[^ ]{0,10}){0,3}",
        "# \\PC{0,10}",
        "\\PC{0,20}",
    ];
    run(cases, proptest::collection::vec(line, 0..30), |lines| {
        let text = lines.join("\n");
        match frontdesk::transcript::check_syntax(&text, "t.chat") {
            Ok(_) => {}
            Err(e) => prop_assert!(e.starts_with("t.chat:"), "an error without file:line: {}", e),
        }
        Ok(())
    });
}

// ---------------------------------------------------------------- templates

fn template_rendering(cases: u32) {
    let text = prop_oneof![
        "\\PC{0,40}",
        Just("<script>alert(1)</script>".to_string()),
        Just("{{ 7 * 7 }} {% raw %}".to_string()),
        "[a-z]{1,8}\r\nBcc: [a-z]{1,8}@evil.example",
    ];
    run(cases, (text.clone(), text), |(a, b)| {
        let contexts = [
            ("reply", serde_json::json!({ "messages": [{ "text": a, "options": [b] }], "asks": true, "subject": b })),
            (
                "contact_request",
                serde_json::json!({ "admin_first_name": a, "company": b, "first_name": a, "last_name": b,
                    "email": "x@y.example", "number": "CR-1", "decide_url": "https://x.example/t" }),
            ),
            (
                "account_created",
                serde_json::json!({ "first_name": a, "company": b, "org_id": "ORG-1", "username": a, "hours": 6 }),
            ),
        ];
        for (name, context) in contexts {
            let r = frontdesk::mail::templates::render(&frontdesk::mail::templates::Templates::BuiltIn, name, &context)
                .map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
            prop_assert!(!r.subject.contains(['\r', '\n']), "{name} subject {:?}", r.subject);
            prop_assert!(!r.html.contains("<script>"), "{name}: markup from customer text reached the HTML");
            prop_assert!(
                !r.text.contains("49") || a.contains("49") || b.contains("49"),
                "{name}: template code in customer text ran"
            );
        }
        Ok(())
    });
}

#[test]
fn mail_ingest_never_panics_nor_echoes_a_line_break() {
    mail_ingest(DEFAULT_CASES);
}

#[test]
fn mail_from_machines_is_never_answered() {
    loop_prone_mail(DEFAULT_CASES);
}

#[test]
fn a_number_or_a_near_name_never_picks_another_option() {
    choices(DEFAULT_CASES);
}

#[test]
fn csv_records_around_a_bad_one_are_read_back() {
    csv_records(DEFAULT_CASES);
}

#[test]
fn transcript_parsing_never_panics() {
    transcript_parsing(DEFAULT_CASES);
}

#[test]
fn customer_text_in_templates_stays_text() {
    template_rendering(DEFAULT_CASES / 3);
}

#[test]
#[ignore = "long: 10^6 cases per target (see the module doc)"]
fn a_million_cases_each() {
    mail_ingest(LONG_CASES);
    loop_prone_mail(LONG_CASES);
    choices(LONG_CASES);
    csv_records(LONG_CASES);
    transcript_parsing(LONG_CASES);
    template_rendering(LONG_CASES);
}
