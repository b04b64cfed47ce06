//! One CSV record to a checked row, on the reader thread: fields, and what
//! the row refers to when that is known before the file is read (the
//! company of a contact, contract or license, and its country, which a
//! contact's phone number is read in).

use crate::{
    domain::{Country, EmailAddress, OrgId, Phone},
    store::directory::{DirectoryRow as Row, Table},
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Companies,
    Contacts,
    Contracts,
    Licenses,
}

impl Kind {
    /// The table the file's rows go to.
    pub(super) fn table(self) -> Table {
        match self {
            Kind::Companies => Table::Companies,
            Kind::Contacts => Table::Contacts,
            Kind::Contracts => Table::Contracts,
            Kind::Licenses => Table::Licenses,
        }
    }

    pub(super) fn from_file(name: &str) -> Kind {
        match name {
            "companies.csv" => Kind::Companies,
            "contacts.csv" => Kind::Contacts,
            "contracts.csv" => Kind::Contracts,
            _ => Kind::Licenses,
        }
    }
}

/// The companies on record when a file's import began, with their country:
/// a row of a later file may name only these (the companies file is
/// committed before the files that refer to it are read).
pub(super) use super::companies::Companies as Countries;

fn field(r: &csv::StringRecord, i: usize) -> String {
    crate::text::clean_input(r.get(i).unwrap_or_default(), 512)
}

/// The checks of one record that need no store round trip.
pub(super) fn parse(kind: Kind, r: &csv::StringRecord, companies: &Countries) -> Result<Row, String> {
    let required = |i: usize, what: &str| {
        let v = field(r, i);
        if v.is_empty() {
            Err(format!("{what} is empty"))
        } else {
            Ok(v)
        }
    };
    let org_id = |i: usize| OrgId::parse(&required(i, "org_id")?).map_err(|e| e.to_string());
    let company =
        |org_id: &OrgId| companies.country(org_id).ok_or_else(|| format!("org_id {org_id:?} is not a known company"));
    match kind {
        Kind::Companies => {
            let country =
                Country::parse(&field(r, 6)).map_err(|_| format!("country {:?} is not a country", field(r, 6)))?;
            let postal_code = field(r, 5);
            crate::text::check_postal_code(&postal_code, &country)?;
            let phone =
                Phone::parse(&field(r, 7), Some(&country)).map_err(|e| format!("phone {:?}: {e}", field(r, 7)))?;
            Ok(Row::Company {
                org_id: org_id(0)?,
                name: required(1, "name")?,
                street: required(2, "street")?,
                city: required(3, "city")?,
                region: field(r, 4),
                postal_code,
                country,
                phone,
            })
        }
        Kind::Contacts => {
            let email = EmailAddress::parse(&field(r, 4))
                .map_err(|_| format!("email {:?} is not an e-mail address", field(r, 4)))?;
            let role = field(r, 6).to_lowercase();
            if role != "admin" && role != "user" {
                return Err(format!("role {role:?} must be admin or user"));
            }
            let org_id = org_id(0)?;
            let country = company(&org_id)?;
            let phone = match field(r, 5) {
                p if p.is_empty() => None,
                p => Some(Phone::parse(&p, Some(country)).map_err(|e| format!("phone {p:?}: {e}"))?),
            };
            Ok(Row::Contact {
                org_id,
                username: required(1, "username")?,
                first: required(2, "first_name")?,
                last: required(3, "last_name")?,
                email,
                phone,
                role,
            })
        }
        Kind::Contracts => {
            let number = required(0, "contract_number")?;
            let org_id = org_id(1)?;
            company(&org_id)?;
            Ok(Row::Contract { number, org_id, admin: required(2, "admin_username")? })
        }
        Kind::Licenses => {
            let product = required(2, "product")?;
            let machine_code = Some(field(r, 3)).filter(|m| !m.is_empty());
            let legacy = crate::directory::LEGACY_PRODUCT;
            if machine_code.is_some() && !product.eq_ignore_ascii_case(legacy) {
                return Err(format!("machine_code is only for legacy {legacy} licenses, not {product}"));
            }
            let product = if product.eq_ignore_ascii_case(legacy) { legacy.to_string() } else { product };
            let serial = required(0, "serial_number")?;
            let org_id = org_id(1)?;
            company(&org_id)?;
            Ok(Row::License { serial, org_id, product, machine_code })
        }
    }
}
