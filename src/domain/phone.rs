//! A phone number, in E.164.

use super::{string_value, Country};

/// A number valid for its country, kept in E.164 (`+4930901820`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

/// Why an answer is not a phone number (the message is for the customer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPhone(String);

string_value!(Phone, "phone number");

/// Makes phonenumber's pattern cache big enough for every country's
/// patterns. phonenumber 0.3 compiles its metadata patterns lazily into a
/// shared cache of only 100 entries; numbers of more than a few countries
/// evict each other's patterns and every parse compiles regexes again (the
/// directory import ran at ~3,400 rows/s, most of it regex compilation).
/// Upstream removed the cache in the unreleased 0.4 (rust-phonenumber #102)
/// at a large memory cost (#107); a bigger cache fixes it here.
fn bigger_pattern_cache() {
    static BIGGER_CACHE: std::sync::Once = std::sync::Once::new();
    BIGGER_CACHE.call_once(|| {
        let cache = phonenumber::metadata::DATABASE.cache();
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        *cache = regex_cache::RegexCache::new(4096);
    });
}

impl Phone {
    /// A number valid in `country` (national or international format), or
    /// in international format when no country is known.
    pub fn parse(answer: &str, country: Option<&Country>) -> Result<Phone, InvalidPhone> {
        use phonenumber::country::Id;
        bigger_pattern_cache();
        let why = |s: String| InvalidPhone(s);
        let region = country.map(Country::code);
        let id = match region {
            Some(r) => Some(r.parse::<Id>().map_err(|_| why(format!("I don't know the country code {r}.")))?),
            None => None,
        };
        let a = answer.trim();
        if a.chars().filter(|c| c.is_ascii_digit()).count() < 4 {
            return Err(why("Please type a phone number, with its area code.".to_string()));
        }
        let number = phonenumber::parse(id, a).map_err(|_| {
            why(match region {
                Some(r) => format!("That doesn't look like a phone number for {r}. Please type it with its area code."),
                None => "Please type the phone number in international format, starting with + and the country code."
                    .to_string(),
            })
        })?;
        let (valid, actual) = super::phone_rules::check(&number);
        if !valid {
            return Err(why(match region {
                Some(r) => format!(
                    "That number is not a valid phone number in {r}. Please check the area code and the number of \
                     digits."
                ),
                None => "That is not a valid phone number. Please check the country code, area code and the number \
                         of digits."
                    .to_string(),
            }));
        }
        if let (Some(want), Some(actual)) = (region, actual) {
            if want != actual {
                return Err(why(format!(
                    "That number belongs to another country ({actual}). Please give a phone number in {want}."
                )));
            }
        }
        Ok(Phone(super::phone_rules::e164(&number)))
    }
}

impl TryFrom<String> for Phone {
    type Error = super::NotCanonical;

    /// A stored number: `+` and 4 to 15 digits (E.164).
    fn try_from(s: String) -> Result<Phone, Self::Error> {
        let digits = s.strip_prefix('+').unwrap_or_default();
        if (4..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Phone(s))
        } else {
            Err(Phone::not_canonical(s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Country, Phone};

    #[test]
    fn numbers_are_read_in_their_country_and_kept_in_e164() {
        let de = Country::parse("DE").unwrap();
        assert_eq!(Phone::parse("030 901820", Some(&de)).unwrap(), "+4930901820");
        assert_eq!(Phone::parse("+1 650 253 0000", None).unwrap(), "+16502530000");
        let us = Country::parse("US").unwrap();
        assert!(Phone::parse("+4930901820", Some(&us)).unwrap_err().to_string().contains("another country"));
        assert!(Phone::parse("12", Some(&de)).is_err());
        assert!(Phone::parse("030 901820", None).is_err(), "a national number needs its country");
    }

    #[test]
    fn only_e164_reads_back() {
        assert!(Phone::try_from("+4930901820").is_ok());
        for bad in ["", "4930901820", "+49 30", "+1234567890123456"] {
            assert!(Phone::try_from(bad).is_err(), "{bad:?}");
        }
    }
}
