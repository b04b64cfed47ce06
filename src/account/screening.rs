//! Trade-embargo screening of new accounts.
//!
//! Two passes, as the KB article describes them from the customer's side
//! ("if a Trade Embargo error is received upon first login, wait 6 hours"):
//! a quick screen at sign-up, conservative, which sends anything uncertain to
//! review; and the full review when the waiting time is over, which decides.

use serde::Serialize;

use crate::config::Screening;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Review(String),
    Refused(String),
}

/// Who is being screened.
#[derive(Debug, Clone)]
pub struct Applicant<'a> {
    pub company: &'a str,
    pub person: &'a str,
    pub country: &'a str,
    pub region: &'a str,
}

/// Legal forms dropped before names are compared.
const LEGAL_FORMS: &[&str] = &[
    "llc",
    "ltd",
    "limited",
    "inc",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "bv",
    "co",
    "corp",
    "corporation",
    "plc",
    "kk",
    "pty",
    "ab",
];

fn tokens(name: &str) -> Vec<String> {
    name.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty() && !LEGAL_FORMS.contains(t))
        .map(str::to_string)
        .collect()
}

/// How alike two names are, 0 to 1, whatever their case, punctuation, legal
/// form or word order.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (mut ta, mut tb) = (tokens(a), tokens(b));
    if ta.is_empty() || tb.is_empty() {
        return 0.0;
    }
    let plain = strsim::normalized_levenshtein(&ta.join(" "), &tb.join(" "));
    ta.sort();
    tb.sort();
    plain.max(strsim::normalized_levenshtein(&ta.join(" "), &tb.join(" ")))
}

fn embargoed(s: &Screening, a: &Applicant) -> Option<String> {
    s.embargoed.iter().find_map(|(country, region)| {
        let hit =
            country == a.country && region.as_ref().is_none_or(|r| a.region.to_lowercase().contains(&r.to_lowercase()));
        hit.then(|| match region {
            Some(r) => format!("{} ({})", r, country),
            None => country.clone(),
        })
    })
}

/// The closest denied party to the company or the person, with its score.
fn closest_denied(s: &Screening, a: &Applicant) -> Option<(f64, String)> {
    s.denied_parties
        .iter()
        .flat_map(|d| [(similarity(a.company, d), d.clone()), (similarity(a.person, d), d.clone())])
        .max_by(|x, y| x.0.total_cmp(&y.0))
}

/// The screen at sign-up.
pub fn quick(s: &Screening, a: &Applicant) -> Outcome {
    if let Some(place) = embargoed(s, a) {
        return Outcome::Refused(format!("trade embargo on {place}"));
    }
    match closest_denied(s, a) {
        Some((score, _)) if score >= s.match_similarity => return Outcome::Refused("denied party".into()),
        Some((score, _)) if score >= s.review_similarity => {
            return Outcome::Review("name close to a denied party".into())
        }
        _ => {}
    }
    if s.review_countries.iter().any(|c| c == a.country) {
        return Outcome::Review(format!("accounts in {} are reviewed", a.country));
    }
    Outcome::Passed
}

/// The full review, when the waiting time is over: it decides.
pub fn full(s: &Screening, a: &Applicant) -> Outcome {
    if let Some(place) = embargoed(s, a) {
        return Outcome::Refused(format!("trade embargo on {place}"));
    }
    match closest_denied(s, a) {
        Some((score, _)) if score >= s.match_similarity => Outcome::Refused("denied party".into()),
        _ => Outcome::Passed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Screening {
        crate::config::Settings::load_from(None, &[]).unwrap().screening
    }

    fn who<'a>(company: &'a str, person: &'a str, country: &'a str, region: &'a str) -> Applicant<'a> {
        Applicant { company, person, country, region }
    }

    #[test]
    fn names_compare_without_case_form_or_order() {
        assert!(similarity("Northern Star Shipping LLC", "northern star shipping") > 0.99);
        assert!(similarity("Sidorov, Ivan Petrovich", "Ivan Petrovich Sidorov") > 0.99);
        assert!(similarity("Acme Widgets GmbH", "Acme Proliferation Trading") < 0.6);
    }

    #[test]
    fn quick_and_full() {
        let s = settings();
        assert_eq!(quick(&s, &who("Acme Widgets GmbH", "Ann Lee", "DE", "")), Outcome::Passed);
        assert!(matches!(quick(&s, &who("Havana Tools", "Juan Perez", "CU", "")), Outcome::Refused(_)));
        assert!(matches!(quick(&s, &who("Sunny Resorts", "Olga K", "UA", "Crimea")), Outcome::Refused(_)));
        assert_eq!(quick(&s, &who("Kyiv Soft", "Olga K", "UA", "Kyiv")), Outcome::Passed);
        assert!(matches!(quick(&s, &who("Northern Star Shipping", "Bob", "GB", "")), Outcome::Refused(_)));
        // A near match waits for review, and the full review clears it.
        let near = who("North Star Shipping", "Bob", "GB", "");
        assert!(matches!(quick(&s, &near), Outcome::Review(_)), "{:?}", quick(&s, &near));
        assert_eq!(full(&s, &near), Outcome::Passed);
        let ru = who("Volga Data", "Anna", "RU", "");
        assert!(matches!(quick(&s, &ru), Outcome::Review(_)));
        assert_eq!(full(&s, &ru), Outcome::Passed);
    }
}
