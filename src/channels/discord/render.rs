//! How the engine's messages look on Discord: text escaped so that nothing a
//! customer typed formats or mentions anything, split under the 2,000
//! character limit, choices as buttons (up to 5) or a select menu (paged by
//! 25), every message with no allowed mentions.
//!
//! Pure functions over serenity's builders, so they are tested without a
//! gateway.

use serenity::all::{
    ButtonStyle, CreateActionRow, CreateAllowedMentions, CreateButton, CreateMessage, CreateSelectMenu,
    CreateSelectMenuKind, CreateSelectMenuOption,
};

use crate::engine::Outbound;

/// Discord's limit on a message's content, in characters.
pub const MAX_CONTENT: usize = 2000;
/// Buttons in one action row.
pub const MAX_BUTTONS: usize = 5;
/// Options in one select menu.
pub const PAGE: usize = 25;
const MAX_BUTTON_LABEL: usize = 80;
const MAX_OPTION_LABEL: usize = 100;

/// Escapes Markdown and mentions so the text shows exactly as written.
/// Web addresses stay intact (an escape inside one would break the link).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        escape_line(line, &mut out);
    }
    out
}

fn escape_line(line: &str, out: &mut String) {
    // Block syntax that only counts at the start of a line: headings and
    // lists ("- ", "+ ", "1. "); quotes ('>') are escaped everywhere below.
    let body = line.trim_start();
    out.push_str(&line[..line.len() - body.len()]);
    if body.starts_with(['#', '-', '+']) {
        out.push('\\');
    }
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    let numbered = digits > 0 && body[digits..].starts_with('.');
    let mut rest = body;
    if numbered {
        out.push_str(&body[..digits]);
        out.push('\\');
        rest = &body[digits..];
    }
    let mut word_start = true;
    let mut chars = rest.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if word_start && (rest[at..].starts_with("https://") || rest[at..].starts_with("http://")) {
            let end = rest[at..].find(char::is_whitespace).map_or(rest.len(), |e| at + e);
            out.push_str(&rest[at..end]);
            while chars.peek().is_some_and(|(i, _)| *i < end) {
                chars.next();
            }
            word_start = false;
            continue;
        }
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            // "@everyone" and "@here" are the mentions plain text can make
            // ("<@id>" is escaped above): never one, even if allowed mentions
            // were ever loosened. Other '@'s (addresses) stay as they are.
            '@' => {
                out.push('@');
                if rest[at + 1..].starts_with("everyone") || rest[at + 1..].starts_with("here") {
                    out.push('\u{200B}');
                }
            }
            _ => out.push(c),
        }
        word_start = c.is_whitespace();
    }
}

/// Splits `text` into pieces of at most [`MAX_CONTENT`] characters, at line
/// breaks where possible, else at spaces, never inside an escape.
pub fn split(text: &str) -> Vec<String> {
    crate::channels::pieces::split(text, MAX_CONTENT, |rest, cut| {
        // A cut right after an escaping backslash would split "\*" in two.
        let backslashes = rest[..cut].bytes().rev().take_while(|&b| b == b'\\').count();
        cut - backslashes % 2
    })
}

/// What a component's `custom_id` asks for. The prompt's step travels with
/// it, so a click on an old question is recognised as stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Custom {
    /// Option `index` (0-based) of the question at `step`.
    Choose { step: u32, index: usize },
    /// The select menu's options, page `page`.
    Page { step: u32, page: usize },
    /// A select menu (its value is the option's index).
    Select { step: u32 },
}

impl Custom {
    pub fn id(&self) -> String {
        match self {
            Custom::Choose { step, index } => format!("fd:{step}:b:{index}"),
            Custom::Page { step, page } => format!("fd:{step}:p:{page}"),
            Custom::Select { step } => format!("fd:{step}:s"),
        }
    }

    pub fn parse(id: &str) -> Option<Custom> {
        let mut parts = id.strip_prefix("fd:")?.split(':');
        let step = parts.next()?.parse().ok()?;
        let custom = match (parts.next()?, parts.next()) {
            ("b", Some(i)) => Custom::Choose { step, index: i.parse().ok()? },
            ("p", Some(p)) => Custom::Page { step, page: p.parse().ok()? },
            ("s", None) => Custom::Select { step },
            _ => return None,
        };
        parts.next().is_none().then_some(custom)
    }
}

fn truncate(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_string();
    }
    let mut s: String = label.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// The components of a question with `options`, showing page `page` of a
/// long list.
pub fn components(step: u32, options: &[String], page: usize) -> Vec<CreateActionRow> {
    if options.is_empty() {
        return Vec::new();
    }
    if options.len() <= MAX_BUTTONS {
        let buttons = options
            .iter()
            .enumerate()
            .map(|(index, o)| {
                CreateButton::new(Custom::Choose { step, index }.id())
                    .label(truncate(o, MAX_BUTTON_LABEL))
                    .style(ButtonStyle::Primary)
            })
            .collect();
        return vec![CreateActionRow::Buttons(buttons)];
    }
    let pages = options.len().div_ceil(PAGE);
    let page = page.min(pages - 1);
    let first = page * PAGE;
    let shown = options
        .iter()
        .enumerate()
        .skip(first)
        .take(PAGE)
        .map(|(i, o)| CreateSelectMenuOption::new(truncate(o, MAX_OPTION_LABEL), i.to_string()))
        .collect();
    let placeholder =
        if pages > 1 { format!("Choose… (page {} of {pages})", page + 1) } else { "Choose…".to_string() };
    let mut rows = vec![CreateActionRow::SelectMenu(
        CreateSelectMenu::new(Custom::Select { step }.id(), CreateSelectMenuKind::String { options: shown })
            .placeholder(placeholder),
    )];
    if pages > 1 {
        rows.push(CreateActionRow::Buttons(vec![
            CreateButton::new(Custom::Page { step, page: page.saturating_sub(1) }.id())
                .label("◀ Previous")
                .style(ButtonStyle::Secondary)
                .disabled(page == 0),
            CreateButton::new(Custom::Page { step, page: page + 1 }.id())
                .label("Next ▶")
                .style(ButtonStyle::Secondary)
                .disabled(page + 1 == pages),
        ]));
    }
    rows
}

/// The Discord messages for one engine message, in order; none for a
/// hand-off marker (the text before it already told the customer).
pub fn messages(message: &Outbound) -> Vec<CreateMessage> {
    let (text, rows) = match message {
        Outbound::Text { text, .. } => (escape(text), Vec::new()),
        Outbound::Prompt { text, options, step, .. } => (escape(text), components(*step, options, 0)),
        Outbound::Handoff { .. } => return Vec::new(),
    };
    let pieces = split(&text);
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let m = CreateMessage::new().content(piece).allowed_mentions(CreateAllowedMentions::new());
            if i == last && !rows.is_empty() {
                m.components(rows.clone())
            } else {
                m
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_mentions_but_not_links() {
        assert_eq!(escape("**bold** _it_ ~~s~~ `c` ||sp||"), r"\*\*bold\*\* \_it\_ \~\~s\~\~ \`c\` \|\|sp\|\|");
        assert_eq!(escape("@everyone and @here"), "@\u{200B}everyone and @\u{200B}here");
        assert_eq!(escape("<@123> [x](https://evil.example)"), r"\<@123\> \[x\](https://evil.example)");
        assert_eq!(escape("ann@example.com"), "ann@example.com");
        assert_eq!(escape("# Title\n> quote\n- item\n12. item"), "\\# Title\n\\> quote\n\\- item\n12\\. item");
        assert_eq!(escape("see https://x.example/a_b*c for more_info"), r"see https://x.example/a_b*c for more\_info");
        assert_eq!(escape(r"a\b"), r"a\\b");
        assert_eq!(escape("plain words, 3 - 2 = 1"), "plain words, 3 - 2 = 1");
    }

    #[test]
    fn splits_under_the_limit_at_line_breaks_and_never_inside_an_escape() {
        let long = format!("{}\n{}", "a".repeat(1500), "b".repeat(1500));
        let pieces = split(&long);
        assert_eq!(pieces, vec!["a".repeat(1500), "b".repeat(1500)]);
        let stars = escape(&"*".repeat(1500));
        let pieces = split(&stars);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_CONTENT && !p.ends_with('\\') || p.ends_with(r"\*")));
        assert_eq!(pieces.concat(), stars);
        let wide = "é".repeat(4500);
        let pieces = split(&wide);
        assert_eq!(pieces.iter().map(|p| p.chars().count()).collect::<Vec<_>>(), vec![2000, 2000, 500]);
        assert_eq!(split(""), vec![String::new()]);
    }

    #[test]
    fn custom_ids_round_trip_and_reject_others() {
        for c in [Custom::Choose { step: 7, index: 3 }, Custom::Page { step: 1, page: 2 }, Custom::Select { step: 9 }] {
            assert_eq!(Custom::parse(&c.id()), Some(c));
        }
        for bad in ["", "fd:", "fd:x:b:1", "fd:1:b", "fd:1:s:2", "other:1:b:1", "fd:1:b:1:extra"] {
            assert_eq!(Custom::parse(bad), None, "{bad}");
        }
    }

    fn json(rows: Vec<CreateActionRow>) -> serde_json::Value {
        serde_json::to_value(rows).unwrap()
    }

    #[test]
    fn few_options_are_buttons_many_a_paged_select_menu() {
        let five: Vec<String> = (1..=5).map(|i| format!("Option {i}")).collect();
        let rows = json(components(4, &five, 0));
        assert_eq!(rows[0]["components"].as_array().unwrap().len(), 5);
        assert_eq!(rows[0]["components"][2]["custom_id"], "fd:4:b:2");

        let sixty: Vec<String> = (1..=60).map(|i| format!("Contact {i}")).collect();
        let rows = json(components(4, &sixty, 2));
        let menu = &rows[0]["components"][0];
        assert_eq!(menu["custom_id"], "fd:4:s");
        let options = menu["options"].as_array().unwrap();
        assert_eq!(options.len(), 10);
        assert_eq!(options[0]["value"], "50");
        assert_eq!(menu["placeholder"], "Choose… (page 3 of 3)");
        assert_eq!(rows[1]["components"][0]["custom_id"], "fd:4:p:1");
        assert_eq!(rows[1]["components"][1]["disabled"], true);

        let long = vec!["x".repeat(300); 6];
        let rows = json(components(1, &long, 0));
        assert_eq!(rows[0]["components"][0]["options"][0]["label"].as_str().unwrap().chars().count(), 100);
    }

    #[test]
    fn every_message_allows_no_mentions_and_components_ride_on_the_last_piece() {
        let m = Outbound::Prompt {
            text: "x\n".repeat(1500),
            options: vec!["Yes".into(), "No".into()],
            step: 3,
            private: true,
        };
        let out: Vec<serde_json::Value> = messages(&m).into_iter().map(|m| serde_json::to_value(m).unwrap()).collect();
        assert_eq!(out.len(), 2);
        for m in &out {
            assert_eq!(m["allowed_mentions"], serde_json::json!({"parse": [], "roles": [], "users": []}));
        }
        assert!(out[0].get("components").is_none_or(|c| c.as_array().unwrap().is_empty()));
        assert_eq!(out[1]["components"][0]["components"][1]["custom_id"], "fd:3:b:1");
        assert!(messages(&Outbound::Handoff { reason: "r".into() }).is_empty());
    }
}
