//! How the engine's messages look on Slack: text escaped so nothing a
//! customer typed mentions anyone (`<!channel>`, `<@U…>`) or links, split
//! under the 3,000 characters of a section, choices as Block Kit buttons (up
//! to 5) or a `static_select` (paged by 100 with Previous and Next).
//!
//! Pure functions, tested without Slack.

use serde_json::{json, Value};
use slack_morphism::prelude::SlackBlock;

use super::api::Content;
use crate::engine::Outbound;

/// A section's text limit, in characters.
pub const MAX_SECTION: usize = 3000;
/// Buttons shown before a select menu takes over.
pub const MAX_BUTTONS: usize = 5;
/// Options in one select menu.
pub const PAGE: usize = 100;
/// Slack's limit on a button's or an option's text.
const MAX_LABEL: usize = 75;

/// Escapes the three characters Slack's `mrkdwn` gives meaning to: with
/// them escaped, `<!channel>`, `<@U123>` and `<https://x|y>` show as typed.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Splits escaped text into pieces of at most [`MAX_SECTION`] characters,
/// at line breaks or spaces where it can, never inside an entity (`&amp;`).
pub fn split(text: &str) -> Vec<String> {
    crate::channels::pieces::split(text, MAX_SECTION, |rest, cut| {
        // An `&` without its `;` before the cut starts an entity the cut
        // would break: cut before it.
        match rest[..cut].rfind('&') {
            Some(amp) if !rest[amp..cut].contains(';') => amp.max(1),
            _ => cut,
        }
    })
}

fn label(text: &str) -> String {
    if text.chars().count() <= MAX_LABEL {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX_LABEL - 1).collect();
    format!("{cut}…")
}

/// What an element's `action_id` asks for. The prompt's step travels with
/// it, so a click on an old question is recognised as stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Option `index` (0-based) of the question at `step`.
    Choose { step: u32, index: usize },
    /// The select menu of the question at `step` (its value is the option's index).
    Select { step: u32 },
    /// Show page `page` of the select menu's options.
    Page { step: u32, page: usize },
}

impl Action {
    pub fn id(&self) -> String {
        match self {
            Action::Choose { step, index } => format!("fd:{step}:b:{index}"),
            Action::Select { step } => format!("fd:{step}:s"),
            Action::Page { step, page } => format!("fd:{step}:p:{page}"),
        }
    }

    pub fn parse(id: &str) -> Option<Action> {
        let mut parts = id.strip_prefix("fd:")?.split(':');
        let step = parts.next()?.parse().ok()?;
        let action = match (parts.next()?, parts.next()) {
            ("b", Some(i)) => Action::Choose { step, index: i.parse().ok()? },
            ("s", None) => Action::Select { step },
            ("p", Some(p)) => Action::Page { step, page: p.parse().ok()? },
            _ => return None,
        };
        parts.next().is_none().then_some(action)
    }
}

fn blocks(value: Value) -> Vec<SlackBlock> {
    serde_json::from_value(value).expect("blocks built here are valid Block Kit")
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": label(text), "emoji": false })
}

/// The choice elements of a question: buttons, or a page of a select menu
/// with the buttons that turn its pages.
fn choices(step: u32, options: &[String], page: usize) -> Value {
    if options.len() <= MAX_BUTTONS {
        let buttons: Vec<Value> = options
            .iter()
            .enumerate()
            .map(|(index, o)| {
                json!({ "type": "button", "text": plain(o), "action_id": Action::Choose { step, index }.id(),
                        "value": index.to_string() })
            })
            .collect();
        return json!({ "type": "actions", "elements": buttons });
    }
    let pages = options.len().div_ceil(PAGE);
    let page = page.min(pages - 1);
    let shown: Vec<Value> = options
        .iter()
        .enumerate()
        .skip(page * PAGE)
        .take(PAGE)
        .map(|(index, o)| json!({ "text": plain(o), "value": index.to_string() }))
        .collect();
    let mut elements = vec![json!({
        "type": "static_select", "action_id": Action::Select { step }.id(),
        "placeholder": plain(&format!("Choose ({} of {})", page + 1, pages)), "options": shown,
    })];
    if page > 0 {
        elements.push(json!({ "type": "button", "text": plain("Previous"),
                              "action_id": Action::Page { step, page: page - 1 }.id() }));
    }
    if page + 1 < pages {
        elements.push(json!({ "type": "button", "text": plain("Next"),
                              "action_id": Action::Page { step, page: page + 1 }.id() }));
    }
    json!({ "type": "actions", "elements": elements })
}

/// A question with the choices of page `page`.
pub fn prompt(text: &str, options: &[String], step: u32, page: usize) -> Vec<Content> {
    let mut pieces = split(&escape(text));
    let last = pieces.pop().unwrap_or_default();
    let mut out: Vec<Content> =
        pieces.iter().map(|p| Content { text: p.clone(), blocks: blocks(json!([section(p)])) }).collect();
    let mut last_blocks = vec![section(if last.is_empty() { " " } else { &last })];
    if !options.is_empty() {
        last_blocks.push(choices(step, options, page));
    }
    out.push(Content { text: last.clone(), blocks: blocks(Value::Array(last_blocks)) });
    out
}

/// The messages an outbound message is shown as (none for a hand-off,
/// which the channel announces in its own words).
pub fn messages(message: &Outbound) -> Vec<Content> {
    match message {
        Outbound::Text { text, by, .. } => {
            let text = match by {
                Some(agent) => format!("{}: {}", agent, text),
                None => text.clone(),
            };
            split(&escape(&text))
                .into_iter()
                .map(|p| Content { blocks: blocks(json!([section(&p)])), text: p })
                .collect()
        }
        Outbound::Prompt { text, options, step, .. } => prompt(text, options, *step, 0),
        Outbound::Handoff { .. } => Vec::new(),
    }
}

/// A question once answered: its text, and what was chosen instead of the
/// buttons (or nothing, for a stale click).
pub fn answered(question: &str, choice: Option<&str>) -> Content {
    let text = match choice {
        Some(choice) => format!("{}\n→ {}", escape(question), escape(choice)),
        None => escape(question),
    };
    let text = split(&text).swap_remove(0);
    Content { blocks: blocks(json!([section(&text)])), text }
}

/// A fixed text of the channel (no personal data), escaped.
pub fn notice(text: &str) -> Content {
    let text = split(&escape(text)).swap_remove(0);
    Content { blocks: Vec::new(), text }
}

/// Text already in Slack's markup (an agent's answer), split to fit.
pub fn notice_raw(text: &str) -> Content {
    Content { text: split(text).swap_remove(0), blocks: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_links_typed_by_a_customer_stay_text() {
        let typed = "<!channel> <@U123> <https://evil.example|click> & more";
        let shown = escape(typed);
        assert_eq!(shown, "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; &amp; more");
        assert!(!shown.contains('<') && !shown.contains('>'));
    }

    #[test]
    fn long_text_is_split_under_the_limit_and_never_inside_an_entity() {
        let text = escape(&format!("{}&{}", "a".repeat(2998), "b".repeat(10)));
        let pieces = split(&text);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_SECTION));
        assert!(pieces.iter().all(|p| p.matches('&').count() == p.matches(';').count()), "{pieces:?}");
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn few_options_are_buttons_many_a_paged_select() {
        let few: Vec<String> = (1..=3).map(|i| format!("Option {i}")).collect();
        let content = prompt("Pick one", &few, 7, 0);
        let json = serde_json::to_value(&content[0].blocks).unwrap();
        assert_eq!(json[1]["elements"].as_array().unwrap().len(), 3);
        assert_eq!(json[1]["elements"][2]["action_id"], "fd:7:b:2");

        let many: Vec<String> = (1..=230).map(|i| format!("Contact {i}")).collect();
        let second = prompt("Pick", &many, 8, 1);
        let json = serde_json::to_value(&second[0].blocks).unwrap();
        let elements = json[1]["elements"].as_array().unwrap();
        assert_eq!(elements[0]["type"], "static_select");
        assert_eq!(elements[0]["options"].as_array().unwrap().len(), 100);
        assert_eq!(elements[0]["options"][0]["value"], "100");
        let ids: Vec<&str> = elements.iter().map(|e| e["action_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["fd:8:s", "fd:8:p:0", "fd:8:p:2"]);
    }

    #[test]
    fn action_ids_round_trip_and_strangers_are_refused() {
        for a in [Action::Choose { step: 3, index: 4 }, Action::Select { step: 9 }, Action::Page { step: 1, page: 2 }] {
            assert_eq!(Action::parse(&a.id()), Some(a));
        }
        for bad in ["", "fd:x:b:1", "fd:1:b", "fd:1:s:2", "other:1:b:1", "fd:1:b:1:extra"] {
            assert_eq!(Action::parse(bad), None, "{bad}");
        }
    }
}
