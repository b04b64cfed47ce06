//! An e-mail address as frontdesk keeps it.

use std::str::FromStr as _;

use super::string_value;

/// A syntactically valid address whose domain has a dot, with the domain in
/// lower case and the local part as typed (some mail servers tell
/// `Ann.Lee` from `ann.lee`; lookups compare [`EmailAddress::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

/// Why an answer is not an e-mail address (the message is for the customer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("That doesn't look like an e-mail address. Please type it like name@company.com.")]
pub struct InvalidEmail;

string_value!(EmailAddress, "e-mail address");

impl EmailAddress {
    /// An address from what a customer or a file gave: surrounding space and
    /// angle brackets are dropped; no white space inside, a dotted domain.
    pub fn parse(answer: &str) -> Result<EmailAddress, InvalidEmail> {
        let a = answer.trim().trim_matches(|c| c == '<' || c == '>');
        if a.is_empty() || a.contains(char::is_whitespace) {
            return Err(InvalidEmail);
        }
        let parsed = email_address::EmailAddress::from_str(a).map_err(|_| InvalidEmail)?;
        let (local, domain) = (parsed.local_part(), parsed.domain());
        if !domain.contains('.') || domain.starts_with('[') || domain.ends_with('.') {
            return Err(InvalidEmail);
        }
        Ok(EmailAddress(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    /// The whole address in lower case: what lookups and limits compare.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = super::NotCanonical;

    /// A stored address: one `@` with something on each side, no white
    /// space, a lower-case domain.
    fn try_from(s: String) -> Result<EmailAddress, Self::Error> {
        let ok = match s.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !s.contains(char::is_whitespace)
                    && !domain.chars().any(|c| c.is_uppercase())
            }
            None => false,
        };
        if ok {
            Ok(EmailAddress(s))
        } else {
            Err(EmailAddress::not_canonical(s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EmailAddress;

    #[test]
    fn parsed_addresses_keep_the_local_part_and_lower_the_domain() {
        let a = EmailAddress::parse(" <Ann.Lee@ACME.Example> ").unwrap();
        assert_eq!(a, "Ann.Lee@acme.example");
        assert_eq!((a.local_part(), a.domain(), a.key().as_str()), ("Ann.Lee", "acme.example", "ann.lee@acme.example"));
        for bad in [
            "",
            "ann",
            "ann@localhost",
            "ann lee@acme.example",
            "ann@[127.0.0.1]",
            "ann@acme.example.",
            "ann@acme.com\r\nBcc: x@y.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn what_parse_writes_reads_back_and_nothing_else_does() {
        let a = EmailAddress::parse("pat+1@Example.COM").unwrap();
        assert_eq!(EmailAddress::try_from(a.to_string()), Ok(a));
        for bad in ["pat", "pat@EXAMPLE.com", "@example.com", "p at@example.com"] {
            assert!(EmailAddress::try_from(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&EmailAddress::parse("a@b.example").unwrap()).unwrap();
        assert_eq!(json, "\"a@b.example\"");
        assert!(serde_json::from_str::<EmailAddress>("\"nope\"").is_err());
    }
}
