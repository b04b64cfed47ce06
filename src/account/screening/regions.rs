//! Embargoed regions of otherwise open countries, screened on structured
//! data: postal-code ranges, region names and city lists per region, read
//! from a rules file an operator can replace (`screening.regions_file`; the
//! default is `config/screening/regions.toml`, built in).
//!
//! A substring test on free text let "Krym", "Республика Крым" and "Donezk"
//! through. Here names are normalised (case, accents, punctuation, other
//! scripts transliterated, generic words dropped, inflected forms matched),
//! a postal code inside a region's range refuses whatever the text says, and
//! an address of such a country that nothing places clearly outside every
//! region goes to review.

use serde::Deserialize;

/// The built-in rules.
pub const DEFAULT_RULES: &str = include_str!("../../../config/screening/regions.toml");

/// Words that say what kind of place a name is, not which.
const GENERIC: &[&str] = &[
    "oblast",
    "oblast'",
    "obl",
    "region",
    "province",
    "republic",
    "respublika",
    "respublika",
    "autonomous",
    "avtonomna",
    "avtonomnaya",
    "the",
    "of",
    "people's",
    "peoples",
    "s",
    "oblasti",
    "krai",
    "city",
    "misto",
    "gorod",
];

/// Letters a name may gain by inflection and still be the same place
/// ("donetsk" → "donetska", "krym" → "krymskaya").
const INFLECTION: usize = 5;

/// One embargoed region, as the rules file gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub country: String,
    pub name: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub postal_codes: Vec<String>,
    #[serde(default)]
    pub cities: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    region: Vec<Region>,
}

/// A region ready to screen against: names normalised, ranges parsed.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub country: String,
    pub name: String,
    names: Vec<Vec<String>>,
    cities: Vec<Vec<String>>,
    /// Inclusive ranges, with the digit count they are written in.
    postal_codes: Vec<(u64, u64, usize)>,
}

/// Reads a rules file's text; an error names what is wrong.
pub fn parse_rules(text: &str) -> Result<Vec<Compiled>, String> {
    let file: RulesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.region.into_iter().map(compile).collect()
}

fn compile(r: Region) -> Result<Compiled, String> {
    let country = r.country.trim().to_uppercase();
    if crate::domain::Country::try_from(country.as_str()).is_err() {
        return Err(format!("region {:?}: {:?} is not an ISO country code", r.name, r.country));
    }
    let mut postal_codes = Vec::new();
    for range in &r.postal_codes {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let (lo, hi) = (lo.trim(), hi.trim());
        let parsed = (lo.parse::<u64>(), hi.parse::<u64>());
        match parsed {
            (Ok(a), Ok(b)) if a <= b && lo.len() == hi.len() => postal_codes.push((a, b, lo.len())),
            _ => return Err(format!("region {:?}: postal code range {range:?} is not like \"95000-98999\"", r.name)),
        }
    }
    let mut names: Vec<Vec<String>> = r.names.iter().chain(std::iter::once(&r.name)).map(|n| words(n)).collect();
    names.retain(|n| !n.is_empty());
    let cities = r.cities.iter().map(|c| words(c)).filter(|c| !c.is_empty()).collect();
    Ok(Compiled { country, name: r.name, names, cities, postal_codes })
}

/// A place name as compared: transliterated to ASCII, lower-case, split
/// into words, generic words dropped.
pub fn words(name: &str) -> Vec<String> {
    crate::text::folded_words(name).into_iter().filter(|w| !GENERIC.contains(&w.as_str())).collect()
}

/// Whether `text` (already [`words`]) names `name`: every word of the name
/// starts a word of the text, which may add a few letters of inflection.
fn names(text: &[String], name: &[String]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|n| text.iter().any(|t| t.starts_with(n.as_str()) && t.len() - n.len() <= INFLECTION && n.len() >= 2))
}

/// Whether `text` is only close to `name` (a misspelling or another
/// transliteration): a word of five letters or more within 80 % likeness.
fn close_to(text: &[String], name: &[String]) -> bool {
    name.iter().filter(|n| n.len() >= 4).any(|n| {
        text.iter().filter(|t| t.len() >= 4).any(|t| {
            let stem = &t[..t.len().min(n.len() + 1)];
            strsim::normalized_levenshtein(stem, n) >= 0.75 || strsim::normalized_levenshtein(t, n) >= 0.8
        })
    })
}

/// The address to screen, as the profile gives it.
#[derive(Debug, Clone, Default)]
pub struct Place<'a> {
    pub country: &'a str,
    pub region: &'a str,
    pub city: &'a str,
    pub postal_code: &'a str,
}

/// What the region rules say of an address, with the rule that decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The country has no embargoed region, or the address is clearly outside them.
    Outside,
    Inside(String),
    Unsure(String),
}

/// Screens `place` against the regions in force (`rules`, of the country's).
pub fn screen(rules: &[Compiled], place: &Place) -> Verdict {
    let in_country: Vec<&Compiled> = rules.iter().filter(|r| r.country == place.country).collect();
    if in_country.is_empty() {
        return Verdict::Outside;
    }
    let (region, city) = (words(place.region), words(place.city));
    let digits: String = place.postal_code.chars().filter(char::is_ascii_digit).collect();
    let code = digits.parse::<u64>().ok().map(|n| (n, digits.len()));
    for r in &in_country {
        if let Some((n, len)) = code {
            if let Some((lo, hi, _)) = r.postal_codes.iter().find(|(lo, hi, l)| *l == len && (*lo..=*hi).contains(&n)) {
                return Verdict::Inside(format!(
                    "{} ({}): postal code {} is in {lo:0len$}-{hi:0len$}",
                    r.name, r.country, place.postal_code
                ));
            }
        }
        if let Some(n) = r.names.iter().find(|n| names(&region, n)) {
            return Verdict::Inside(format!(
                "{} ({}): region {:?} names {:?}",
                r.name,
                r.country,
                place.region,
                n.join(" ")
            ));
        }
        if let Some(c) = r.cities.iter().find(|c| names(&city, c) && city.len() <= c.len() + 1) {
            return Verdict::Inside(format!("{} ({}): city {:?} is {:?}", r.name, r.country, place.city, c.join(" ")));
        }
    }
    for r in &in_country {
        if r.names.iter().any(|n| close_to(&region, n)) {
            return Verdict::Unsure(format!(
                "{} ({}): region {:?} is close to its names",
                r.name, r.country, place.region
            ));
        }
        if r.cities.iter().any(|c| close_to(&city, c)) {
            return Verdict::Unsure(format!(
                "{} ({}): city {:?} is close to one of its cities",
                r.name, r.country, place.city
            ));
        }
    }
    if code.is_none() || in_country.iter().any(|r| r.postal_codes.is_empty()) {
        return Verdict::Unsure(format!(
            "{}: postal code {:?} does not place the address outside the embargoed regions",
            place.country, place.postal_code
        ));
    }
    Verdict::Outside
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(region: &str, city: &str, postal_code: &str) -> Verdict {
        let rules = parse_rules(DEFAULT_RULES).unwrap();
        screen(&rules, &Place { country: "UA", region, city, postal_code })
    }

    fn inside(v: &Verdict) -> bool {
        matches!(v, Verdict::Inside(_))
    }

    #[test]
    fn the_built_in_rules_parse() {
        let rules = parse_rules(DEFAULT_RULES).unwrap();
        let names: Vec<String> = rules.iter().map(|r| format!("{}:{}", r.country, r.name)).collect();
        assert_eq!(names, ["UA:Crimea", "UA:Donetsk", "UA:Luhansk", "RU:Crimea", "RU:Donetsk", "RU:Luhansk"]);
    }

    #[test]
    fn names_in_any_script_and_spelling_are_inside() {
        for region in ["Krym", "Республика Крым", "Donezk", "Донецька область", "CRIMÉE", "Luhanska oblast", "Крим"]
        {
            // A Kyiv postal code does not save a region that names the place.
            assert!(inside(&verdict(region, "Kyiv", "01001")), "{region}: {:?}", verdict(region, "Kyiv", "01001"));
        }
        assert!(inside(&verdict("", "Simferopol", "01001")));
        assert!(inside(&verdict("", "Сімферополь", "01001")));
    }

    #[test]
    fn a_postal_code_inside_decides_whatever_the_text() {
        let v = verdict("Kyiv", "Kyiv", "95000");
        assert_eq!(v, Verdict::Inside("Crimea (UA): postal code 95000 is in 95000-98999".into()));
        assert!(inside(&verdict("", "", "83001")));
        assert!(inside(&verdict("", "", "94 999")));
    }

    #[test]
    fn only_an_address_clearly_outside_passes() {
        assert_eq!(verdict("Kyiv", "Kyiv", "01001"), Verdict::Outside);
        assert_eq!(verdict("", "Lviv", "79000"), Verdict::Outside);
        assert_eq!(verdict("Odeska", "Odesa", "65000"), Verdict::Outside);
        // Close to a name: review.
        assert!(
            matches!(verdict("Donetzk", "Kyiv", "01001"), Verdict::Unsure(_)),
            "{:?}",
            verdict("Donetzk", "Kyiv", "01001")
        );
        assert!(matches!(verdict("", "Simferopl", "01001"), Verdict::Unsure(_)));
        // Nothing readable: review.
        assert!(matches!(verdict("", "Kyiv", ""), Verdict::Unsure(_)));
        // Countries without listed regions are not concerned; Russian
        // addressing of an occupied region is.
        let rules = parse_rules(DEFAULT_RULES).unwrap();
        assert_eq!(screen(&rules, &Place { country: "DE", region: "Krym", ..Default::default() }), Verdict::Outside);
        let ru = |region, postal_code| screen(&rules, &Place { country: "RU", region, city: "", postal_code });
        assert!(inside(&ru("Республика Крым", "101000")));
        assert!(inside(&ru("", "295000")));
        assert_eq!(ru("Moskva", "101000"), Verdict::Outside);
    }

    #[test]
    fn bad_rules_are_reported() {
        assert!(parse_rules("[[region]]\ncountry = \"XX\"\nname = \"A\"").unwrap_err().contains("ISO"));
        let bad = "[[region]]\ncountry = \"UA\"\nname = \"A\"\npostal_codes = [\"9-100\"]";
        assert!(parse_rules(bad).unwrap_err().contains("range"));
        assert!(parse_rules("[[region]]\ncountry = \"UA\"\nname = \"A\"\nnmes = []").is_err());
    }
}
