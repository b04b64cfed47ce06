//! A country, by its ISO 3166-1 alpha-2 code.

use super::string_value;

/// A country known to ISO 3166-1, kept as its alpha-2 code (`DE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country(String);

/// Why an answer names no country (the message is for the customer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("I don't recognise that country. Please type its name (\"Germany\") or its two-letter code (\"DE\").")]
pub struct UnknownCountry;

string_value!(Country, "country code");

impl Country {
    /// A country by alpha-2 or alpha-3 code (any case) or by name
    /// ("Germany", "United States of America").
    pub fn parse(answer: &str) -> Result<Country, UnknownCountry> {
        let a = answer.trim();
        let country = if a.is_empty() {
            None
        } else if a.len() == 2 {
            celes::Country::from_alpha2(a.to_ascii_uppercase()).ok()
        } else if a.len() == 3 && a.chars().all(|c| c.is_ascii_alphabetic()) {
            celes::Country::from_alpha3(a.to_ascii_uppercase()).ok().or_else(|| a.parse().ok())
        } else {
            a.parse().ok()
        };
        country.map(|c| Country(c.alpha2.to_string())).ok_or(UnknownCountry)
    }

    /// The alpha-2 code (`"DE"`).
    pub fn code(&self) -> &str {
        &self.0
    }

    /// The English name, as it reads in a sentence (`"Germany"`,
    /// `"United States of America"`, `"Korea (the Republic of)"`).
    pub fn name(&self) -> String {
        let Ok(country) = celes::Country::from_alpha2(&self.0) else { return self.0.clone() };
        let name = country.long_name.strip_prefix("The ").unwrap_or(country.long_name);
        let words: Vec<String> = name
            .split(' ')
            .enumerate()
            .map(|(i, w)| if i > 0 && ["Of", "And", "The"].contains(&w) { w.to_lowercase() } else { w.to_string() })
            .collect();
        words.join(" ")
    }
}

impl TryFrom<String> for Country {
    type Error = super::NotCanonical;

    /// A stored code: two upper-case letters that ISO 3166-1 knows.
    fn try_from(s: String) -> Result<Country, Self::Error> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) && celes::Country::from_alpha2(&s).is_ok() {
            Ok(Country(s))
        } else {
            Err(Country::not_canonical(s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Country;

    #[test]
    fn countries_by_code_or_name() {
        for (answer, code) in
            [("de", "DE"), ("DEU", "DE"), ("Germany", "DE"), (" us ", "US"), ("Ukraine", "UA"), ("United States", "US")]
        {
            assert_eq!(Country::parse(answer).unwrap(), code, "{answer}");
        }
        for bad in ["", "XX", "Atlantis", "12"] {
            assert!(Country::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_read_naturally() {
        assert_eq!(Country::parse("us").unwrap().name(), "United States of America");
        assert_eq!(Country::parse("DE").unwrap().name(), "Germany");
    }

    #[test]
    fn only_a_known_upper_case_code_reads_back() {
        assert_eq!(Country::try_from("FR").unwrap().code(), "FR");
        for bad in ["fr", "XX", "FRA", ""] {
            assert!(Country::try_from(bad).is_err(), "{bad:?}");
        }
    }
}
