//! The account directory: companies, contacts, sales contracts, licenses.
//!
//! Searches take customer input, normalise it ([`keys`]) and look it up by
//! the indexed key columns, on either backend.

pub mod demo;
pub mod import;
pub mod records;

use serde::{Deserialize, Serialize};

use crate::store::{directory::CompanyKey, Result, Store};
pub use crate::store::{
    directory::{Company, Contact},
    keys,
};

/// How a customer looks for their company record (the KB article's four
/// search kinds, with machine codes apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Search {
    Username {
        value: String,
    },
    Email {
        value: String,
    },
    /// Both must match: the contract, and its administrator's last name.
    Contract {
        number: String,
        admin_last_name: String,
    },
    Serial {
        value: String,
    },
    /// Accepted for legacy XP licenses only.
    MachineCode {
        value: String,
    },
}

/// The product whose licenses may be found by machine code.
pub const LEGACY_PRODUCT: &str = "XP";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Found {
    Company {
        company: Company,
    },
    NotFound,
    /// A machine code was given, but the value belongs to a license of
    /// another product (its serial number): machine codes are for XP only.
    NotLegacy {
        product: String,
    },
}

#[derive(Clone)]
pub struct Directory {
    store: Store,
}

impl Directory {
    pub fn new(store: Store) -> Directory {
        Directory { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The company a search names, if it may be found: not one whose
    /// screening refused it, and (where the search goes through a contact:
    /// user name, address, a contract's administrator) not through a
    /// disabled contact.
    pub async fn search(&self, search: &Search) -> Result<Found> {
        let store = &self.store;
        let company = match search {
            Search::Username { value } => store.company_by(CompanyKey::Username(&keys::lower(value))).await?,
            Search::Email { value } => store.company_by(CompanyKey::Email(&keys::lower(value))).await?,
            Search::Contract { number, admin_last_name } => {
                store.company_by(CompanyKey::Contract(&keys::code(number), &keys::name(admin_last_name))).await?
            }
            Search::Serial { value } => store.company_by(CompanyKey::Serial(&keys::code(value))).await?,
            Search::MachineCode { value } => {
                let key = keys::code(value);
                let found = store.company_by(CompanyKey::MachineCode(&key, LEGACY_PRODUCT)).await?;
                if found.is_none() {
                    // The customer may have typed the serial of a newer license.
                    if let Some(product) = store.license_product(&key).await?.filter(|p| p != LEGACY_PRODUCT) {
                        return Ok(Found::NotLegacy { product });
                    }
                }
                found
            }
        };
        Ok(company.map_or(Found::NotFound, |company| Found::Company { company }))
    }

    /// Whether a contact has this user name (any case).
    pub async fn username_taken(&self, username: &str) -> Result<bool> {
        self.store.username_taken(username).await
    }

    /// Sets a company's status (`active`, `pending_review`, `refused`).
    pub async fn set_company_status(&self, org_id: &str, status: &str, now: i64) -> Result<bool> {
        self.store.set_company_status(org_id, status, now).await
    }

    /// Sets a contact's status (`active`, `disabled`), by user name.
    pub async fn set_contact_status(&self, username: &str, status: &str, now: i64) -> Result<bool> {
        self.store.set_contact_status(username, status, now).await
    }

    pub async fn company_count(&self) -> Result<i64> {
        self.store.company_count().await
    }

    pub async fn company(&self, org_id: &str) -> Result<Option<Company>> {
        self.store.company(org_id).await
    }

    /// The active contacts of a company, administrators first, then by name.
    pub async fn contacts(&self, org_id: &str) -> Result<Vec<Contact>> {
        self.store.contacts(org_id).await
    }

    pub async fn contact(&self, id: i64) -> Result<Option<Contact>> {
        self.store.contact(id).await
    }

    /// A contact with its company's name.
    pub async fn contact_and_company(&self, id: i64) -> Result<Option<(Contact, String)>> {
        self.store.contact_and_company(id).await
    }

    /// An active contact by e-mail address (case-insensitive).
    pub async fn contact_by_email(&self, email: &str) -> Result<Option<Contact>> {
        self.store.contact_by_email(email).await
    }

    /// Companies with this name (any case and spacing) in this country.
    pub async fn companies_named(&self, name: &str, country: &str) -> Result<Vec<Company>> {
        self.store.companies_named(name, country).await
    }
}
