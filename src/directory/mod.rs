//! The account directory: companies, contacts, sales contracts, licenses.
//!
//! Searches take customer input, normalise it ([`keys`]) and look it up by
//! the indexed key columns, on either backend.

pub mod demo;
pub mod import;
pub mod keys;
pub mod records;

use serde::{Deserialize, Serialize};

use crate::store::{on_db, Result, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Company {
    pub org_id: String,
    pub name: String,
    pub street: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    pub country: String,
    pub phone: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Contact {
    pub id: i64,
    pub org_id: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub role: String,
    pub status: String,
}

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

const COMPANY_COLUMNS: &str =
    "c.org_id, c.name, c.street, c.city, c.region, c.postal_code, c.country, c.phone, c.status";

/// Companies a search may find: every one but those refused by screening.
const FINDABLE: &str = "c.status <> 'refused'";

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
        let db = &self.store.db;
        let company: Option<Company> = match search {
            Search::Username { value } => {
                let sql = format!("SELECT {COMPANY_COLUMNS} FROM contacts k JOIN companies c ON c.org_id = k.org_id WHERE k.username_key = $1 AND k.status = 'active' AND {FINDABLE}");
                on_db!(db, p => sqlx::query_as(&sql).bind(keys::lower(value)).fetch_optional(p).await?)
            }
            Search::Email { value } => {
                let sql = format!("SELECT {COMPANY_COLUMNS} FROM contacts k JOIN companies c ON c.org_id = k.org_id WHERE k.email_key = $1 AND k.status = 'active' AND {FINDABLE}");
                on_db!(db, p => sqlx::query_as(&sql).bind(keys::lower(value)).fetch_optional(p).await?)
            }
            Search::Contract { number, admin_last_name } => {
                let sql = format!(
                    "SELECT {COMPANY_COLUMNS} FROM contracts t JOIN companies c ON c.org_id = t.org_id \
                     JOIN contacts k ON k.username_key = t.admin_username_key AND k.org_id = t.org_id \
                     WHERE t.contract_key = $1 AND k.last_name_key = $2 AND k.status = 'active' AND {FINDABLE}"
                );
                on_db!(db, p => sqlx::query_as(&sql).bind(keys::code(number)).bind(keys::name(admin_last_name)).fetch_optional(p).await?)
            }
            Search::Serial { value } => {
                let sql = format!("SELECT {COMPANY_COLUMNS} FROM licenses l JOIN companies c ON c.org_id = l.org_id WHERE l.serial_key = $1 AND {FINDABLE}");
                on_db!(db, p => sqlx::query_as(&sql).bind(keys::code(value)).fetch_optional(p).await?)
            }
            Search::MachineCode { value } => {
                let key = keys::code(value);
                let sql = format!(
                    "SELECT {COMPANY_COLUMNS} FROM licenses l JOIN companies c ON c.org_id = l.org_id \
                     WHERE l.machine_code_key = $1 AND l.product = '{LEGACY_PRODUCT}' AND {FINDABLE}"
                );
                let found: Option<Company> = on_db!(db, p => sqlx::query_as(&sql).bind(&key).fetch_optional(p).await?);
                if found.is_none() {
                    // The customer may have typed the serial of a newer license.
                    const PRODUCT: &str = "SELECT product FROM licenses WHERE serial_key = $1";
                    let product: Option<(String,)> =
                        on_db!(db, p => sqlx::query_as(PRODUCT).bind(&key).fetch_optional(p).await?);
                    if let Some((product,)) = product.filter(|(p,)| p != LEGACY_PRODUCT) {
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
        const SQL: &str = "SELECT COUNT(*) FROM contacts WHERE username_key = $1";
        let (n,): (i64,) =
            on_db!(&self.store.db, p => sqlx::query_as(SQL).bind(keys::lower(username)).fetch_one(p).await?);
        Ok(n > 0)
    }

    /// Sets a company's status (`active`, `pending_review`, `refused`).
    pub async fn set_company_status(&self, org_id: &str, status: &str, now: i64) -> Result<bool> {
        const SQL: &str = "UPDATE companies SET status = $1, updated_at = $2 WHERE org_id = $3";
        let n = on_db!(&self.store.db, p => sqlx::query(SQL).bind(status).bind(now).bind(org_id).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Sets a contact's status (`active`, `disabled`), by user name.
    pub async fn set_contact_status(&self, username: &str, status: &str, now: i64) -> Result<bool> {
        const SQL: &str = "UPDATE contacts SET status = $1, updated_at = $2 WHERE username_key = $3";
        let n = on_db!(&self.store.db, p => sqlx::query(SQL).bind(status).bind(now).bind(keys::lower(username)).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    pub async fn company_count(&self) -> Result<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM companies";
        let (n,): (i64,) = on_db!(&self.store.db, p => sqlx::query_as(SQL).fetch_one(p).await?);
        Ok(n)
    }

    pub async fn company(&self, org_id: &str) -> Result<Option<Company>> {
        let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies c WHERE c.org_id = $1");
        Ok(on_db!(&self.store.db, p => sqlx::query_as(&sql).bind(org_id).fetch_optional(p).await?))
    }

    /// The active contacts of a company, administrators first, then by name.
    pub async fn contacts(&self, org_id: &str) -> Result<Vec<Contact>> {
        const SQL: &str =
            "SELECT id, org_id, username, first_name, last_name, email, phone, role, status FROM contacts \
                           WHERE org_id = $1 AND status = 'active' ORDER BY role, last_name_key, first_name, id";
        Ok(on_db!(&self.store.db, p => sqlx::query_as(SQL).bind(org_id).fetch_all(p).await?))
    }

    pub async fn contact(&self, id: i64) -> Result<Option<Contact>> {
        const SQL: &str = "SELECT id, org_id, username, first_name, last_name, email, phone, role, status FROM contacts WHERE id = $1";
        Ok(on_db!(&self.store.db, p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await?))
    }

    /// An active contact by e-mail address (case-insensitive).
    pub async fn contact_by_email(&self, email: &str) -> Result<Option<Contact>> {
        const SQL: &str =
            "SELECT id, org_id, username, first_name, last_name, email, phone, role, status FROM contacts \
                           WHERE email_key = $1 AND status = 'active'";
        Ok(on_db!(&self.store.db, p => sqlx::query_as(SQL).bind(keys::lower(email)).fetch_optional(p).await?))
    }

    /// Companies with this name (any case and spacing) in this country.
    pub async fn companies_named(&self, name: &str, country: &str) -> Result<Vec<Company>> {
        let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies c WHERE c.name_key = $1 AND c.country = $2");
        Ok(
            on_db!(&self.store.db, p => sqlx::query_as(&sql).bind(keys::name(name)).bind(country.to_ascii_uppercase()).fetch_all(p).await?),
        )
    }
}
