//! A company's Org ID.

use super::string_value;

/// The identifier of a company record (`ORG-1001`): 1 to 64 ASCII letters,
/// digits, `-`, `_` or `.`, as the directory's source system wrote it.
/// Nothing else, so an Org ID is safe in a URL, a mail subject, a log line
/// and an audit subject without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(String);

/// Why a value is not an Org ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an Org ID (1 to 64 letters, digits, '-', '_' or '.')")]
pub struct InvalidOrgId(pub String);

string_value!(OrgId, "Org ID");

/// The longest Org ID.
pub const MAX_LEN: usize = 64;

fn is_org_id(s: &str) -> bool {
    (1..=MAX_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl OrgId {
    /// An Org ID from a file or a command (surrounding space dropped).
    pub fn parse(s: &str) -> Result<OrgId, InvalidOrgId> {
        let s = s.trim();
        if is_org_id(s) {
            Ok(OrgId(s.to_string()))
        } else {
            Err(InvalidOrgId(s.to_string()))
        }
    }
}

impl TryFrom<String> for OrgId {
    type Error = super::NotCanonical;

    fn try_from(s: String) -> Result<OrgId, Self::Error> {
        if is_org_id(&s) {
            Ok(OrgId(s))
        } else {
            Err(OrgId::not_canonical(s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OrgId;

    #[test]
    fn org_ids_are_plain_identifiers() {
        assert_eq!(OrgId::parse(" ORG-1001 ").unwrap(), "ORG-1001");
        assert!(OrgId::parse("acme_2.eu").is_ok());
        for bad in ["", "ORG 1", "ORG-1\r\nBcc: x", "ÖRG", &"x".repeat(65)] {
            assert!(OrgId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
