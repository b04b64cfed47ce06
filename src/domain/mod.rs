//! Values parsed at the edge: an e-mail address, a phone number, a country
//! and an Org ID.
//!
//! Each is made from customer or file input once, by its `parse` (which says
//! in a sentence meant for the customer why an answer is not one), and from
//! then on travels as its type: the store, the directory, the import and the
//! effects never hold one that was not checked, and a function that needs an
//! address cannot be handed a user name by mistake.
//!
//! What the store reads back it wraps with `TryFrom<String>`: a cheap check
//! of the canonical form `parse` wrote (no phone metadata, no country
//! tables), so reading a contact list costs no parsing. Every type derefs to
//! `str` for reading and serializes as its string, so journals, templates and
//! the database see exactly what they saw before these types existed.
//!
//! This module depends on nothing else of the crate: the store may use it
//! without importing any domain logic.

mod country;
mod email;
mod org_id;
mod phone;
mod phone_rules;

pub use country::{Country, UnknownCountry};
pub use email::{EmailAddress, InvalidEmail};
pub use org_id::{InvalidOrgId, OrgId};
pub use phone::{InvalidPhone, Phone};

/// A value read back from the store that is not in the canonical form its
/// type writes: the database was edited by hand, or by another program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a stored {what}")]
pub struct NotCanonical {
    pub what: &'static str,
    pub value: String,
}

/// The string-like traits every value of this module has: reading as `str`,
/// `Display`, and serde as its string (checked again when deserialized).
macro_rules! string_value {
    ($t:ident, $what:literal) => {
        impl std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let s = String::deserialize(d)?;
                $t::try_from(s).map_err(serde::de::Error::custom)
            }
        }

        impl TryFrom<&str> for $t {
            type Error = $crate::domain::NotCanonical;
            fn try_from(s: &str) -> Result<$t, Self::Error> {
                $t::try_from(s.to_string())
            }
        }

        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Wraps a string unchecked: only for the benches' floors, which
            /// measure the store without the checks.
            #[cfg(feature = "bench")]
            pub fn unchecked(s: String) -> $t {
                $t(s)
            }

            /// The error for a stored value not in canonical form.
            fn not_canonical(value: String) -> $crate::domain::NotCanonical {
                $crate::domain::NotCanonical { what: $what, value }
            }
        }
    };
}
use string_value;
