//! Trade-embargo screening of new accounts.
//!
//! Two passes, as the KB article describes them from the customer's side
//! ("if a Trade Embargo error is received upon first login, wait 6 hours"):
//! a quick screen at sign-up, conservative, which sends anything uncertain to
//! review; and the full review when the waiting time is over, which decides.

pub mod denied;
pub mod regions;

use serde::Serialize;

use crate::config::Screening;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    /// Why: the rule that sent it to review.
    Review(String),
    /// Why: the rule that refused it.
    Refused(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Review(_) => "review",
            Outcome::Refused(_) => "refused",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Passed => f.write_str("passed"),
            Outcome::Review(why) => write!(f, "review: {why}"),
            Outcome::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// Who is being screened, and where.
#[derive(Debug, Clone, Default)]
pub struct Applicant<'a> {
    pub company: &'a str,
    /// Names of people (the administrator), each screened on its own.
    pub people: Vec<&'a str>,
    pub country: &'a str,
    pub region: &'a str,
    pub city: &'a str,
    pub postal_code: &'a str,
}

/// What the embargo rules say: `Some(outcome)` when they refuse or doubt.
fn embargo(s: &Screening, a: &Applicant) -> Option<Outcome> {
    if s.embargoed.iter().any(|(country, region)| region.is_none() && country == a.country) {
        return Some(Outcome::Refused(format!("trade embargo on {}", a.country)));
    }
    let place = regions::Place { country: a.country, region: a.region, city: a.city, postal_code: a.postal_code };
    match regions::screen(&s.regions, &place) {
        regions::Verdict::Outside => None,
        regions::Verdict::Inside(rule) => Some(Outcome::Refused(format!("trade embargo on {rule}"))),
        regions::Verdict::Unsure(rule) => Some(Outcome::Review(format!("possibly in an embargoed region: {rule}"))),
    }
}

/// The closest denied party to the company or any of the people.
fn closest_denied<'s>(s: &'s Screening, a: &Applicant) -> Option<(f64, &'s denied::Party)> {
    std::iter::once(a.company)
        .chain(a.people.iter().copied())
        .filter(|n| !n.trim().is_empty())
        .filter_map(|n| s.denied.closest(n))
        .max_by(|x, y| x.0.total_cmp(&y.0))
}

fn denied_rule(score: f64, party: &denied::Party) -> String {
    format!("{:?} ({}), likeness {score:.2}", party.name, party.source)
}

/// What both passes refuse (an embargo, a denied party's match), or else
/// the embargo rules' doubt and the closest denied party.
type Findings<'s> = (Option<Outcome>, Option<(f64, &'s denied::Party)>);

fn refusal<'s>(s: &'s Screening, a: &Applicant) -> Result<Findings<'s>, Outcome> {
    let embargo = embargo(s, a);
    if let Some(refused @ Outcome::Refused(_)) = embargo {
        return Err(refused);
    }
    match closest_denied(s, a) {
        Some((score, p)) if score >= s.match_similarity => {
            Err(Outcome::Refused(format!("denied party {}", denied_rule(score, p))))
        }
        closest => Ok((embargo, closest)),
    }
}

/// The screen at sign-up: conservative, anything uncertain goes to review.
pub fn quick(s: &Screening, a: &Applicant) -> Outcome {
    let (doubt, closest) = match refusal(s, a) {
        Ok(findings) => findings,
        Err(refused) => return refused,
    };
    if let Some((score, p)) = closest.filter(|(score, _)| *score >= s.review_similarity) {
        return Outcome::Review(format!("name close to denied party {}", denied_rule(score, p)));
    }
    if let Some(review) = doubt {
        return review;
    }
    if s.review_countries.iter().any(|c| c == a.country) {
        return Outcome::Review(format!("accounts in {} are reviewed", a.country));
    }
    Outcome::Passed
}

/// The full review, when the waiting time is over: it refuses what the
/// rules refuse, passes what they clear, and leaves an address it still
/// cannot place to a person (`Review`).
pub fn full(s: &Screening, a: &Applicant) -> Outcome {
    match refusal(s, a) {
        Ok((doubt, _)) => doubt.unwrap_or(Outcome::Passed),
        Err(refused) => refused,
    }
}

/// `frontdesk screening check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The country (ISO code or name).
    #[arg(long)]
    pub country: String,
    #[arg(long, default_value = "")]
    pub region: String,
    #[arg(long, default_value = "")]
    pub city: String,
    #[arg(long, default_value = "")]
    pub postal_code: String,
    /// A company or person name to screen against the denied parties (repeat for more).
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
}

/// Prints what screening decides, first at sign-up, then at the full
/// review; exits 0 whatever it decides (2 for a country it does not know).
pub fn check(settings: &crate::config::Settings, args: &CheckArgs) -> anyhow::Result<i32> {
    let Ok(country) = crate::domain::Country::parse(&args.country) else {
        eprintln!("{:?} is not a country", args.country);
        return Ok(2);
    };
    let applicant = Applicant {
        company: "",
        people: args.names.iter().map(String::as_str).collect(),
        country: &country,
        region: &args.region,
        city: &args.city,
        postal_code: &args.postal_code,
    };
    let s = &settings.screening;
    println!("{}", quick(s, &applicant));
    println!("full review: {}", full(s, &applicant));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Screening {
        crate::config::Settings::load_from(None, &[]).unwrap().screening
    }

    fn who<'a>(company: &'a str, person: &'a str, country: &'a str, region: &'a str) -> Applicant<'a> {
        let postal_code = match country {
            "UA" => "01001",
            "RU" => "101000",
            _ => "",
        };
        Applicant { company, people: vec![person], country, region, city: "", postal_code }
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
        let unplaced = Applicant { postal_code: "", ..ru };
        assert!(matches!(full(&s, &unplaced), Outcome::Review(_)), "without a postal code it stays with a person");
    }

    #[test]
    fn the_issue_s_addresses_are_refused_at_once_and_at_the_review() {
        let s = settings();
        for region in ["Krym", "Республика Крым", "Donezk", "Донецька область"] {
            let a = Applicant {
                company: "Sunny Resorts",
                people: vec!["Olga K"],
                country: "UA",
                region,
                city: "Simferopol",
                postal_code: "95000",
            };
            assert!(matches!(quick(&s, &a), Outcome::Refused(_)), "{region}: {:?}", quick(&s, &a));
            assert!(matches!(full(&s, &a), Outcome::Refused(_)), "{region}: {:?}", full(&s, &a));
        }
    }

    #[test]
    fn an_unclear_address_is_never_passed() {
        let s = settings();
        let a = Applicant {
            company: "Kyiv Soft",
            country: "UA",
            region: "Donetzk",
            postal_code: "01001",
            ..Default::default()
        };
        assert!(matches!(quick(&s, &a), Outcome::Review(_)));
        assert!(matches!(full(&s, &a), Outcome::Review(_)));
    }
}
