//! A directory lookup as an agent sees it: full names and addresses
//! (customers only ever see masked ones).

use std::fmt;

use crate::{
    directory::{Company, Contact, Directory, Found, Search},
    store::Result,
};

/// How an agent looks a company up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupBy {
    Username,
    Email,
    /// A sales contract number and its administrator's last name.
    Contract,
    Serial,
    MachineCode,
    OrgId,
}

impl LookupBy {
    pub const ALL: [(&'static str, LookupBy); 6] = [
        ("username", LookupBy::Username),
        ("email", LookupBy::Email),
        ("contract", LookupBy::Contract),
        ("serial", LookupBy::Serial),
        ("machine_code", LookupBy::MachineCode),
        ("org_id", LookupBy::OrgId),
    ];

    pub fn parse(name: &str) -> Option<LookupBy> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, by)| *by)
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, by)| *by == self).map(|(n, _)| *n).unwrap_or_default()
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Found {
        company: Box<Company>,
        contacts: Vec<Contact>,
    },
    NotFound,
    /// A machine code lookup hit the serial of another product's license.
    NotLegacy {
        product: String,
    },
    /// A contract lookup without the administrator's last name.
    NeedsLastName,
}

/// Looks a company up, with its active contacts.
pub async fn lookup(directory: &Directory, by: LookupBy, value: &str, last_name: Option<&str>) -> Result<Lookup> {
    let value = value.trim().to_string();
    let company = match by {
        LookupBy::OrgId => directory.company(&value).await?,
        _ => {
            let search = match by {
                LookupBy::Username => Search::Username { value },
                LookupBy::Email => Search::Email { value },
                LookupBy::Serial => Search::Serial { value },
                LookupBy::MachineCode => Search::MachineCode { value },
                LookupBy::Contract => match last_name.map(str::trim).filter(|n| !n.is_empty()) {
                    Some(name) => Search::Contract { number: value, admin_last_name: name.to_string() },
                    None => return Ok(Lookup::NeedsLastName),
                },
                LookupBy::OrgId => unreachable!("handled above"),
            };
            match directory.search(&search).await? {
                Found::Company { company } => Some(company),
                Found::NotFound => None,
                Found::NotLegacy { product } => return Ok(Lookup::NotLegacy { product }),
            }
        }
    };
    Ok(match company {
        Some(company) => {
            let contacts = directory.contacts(&company.org_id).await?;
            Lookup::Found { company: Box::new(company), contacts }
        }
        None => Lookup::NotFound,
    })
}

impl fmt::Display for Lookup {
    /// Plain text, for a shell or a chat message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, contacts) = match self {
            Lookup::NotFound => return write!(f, "No company record matches."),
            Lookup::NeedsLastName => {
                return write!(f, "A contract lookup needs the administrator's last name as well.")
            }
            Lookup::NotLegacy { product } => {
                return write!(
                    f,
                    "That is the serial number of a {product} license: machine codes are for XP licenses only."
                )
            }
            Lookup::Found { company, contacts } => (company, contacts),
        };
        write!(
            f,
            "{} (Org ID {}, {})\n{}, {} {}, {} {}\nPhone: {}\nContacts:",
            c.name, c.org_id, c.status, c.street, c.postal_code, c.city, c.region, c.country, c.phone
        )?;
        if contacts.is_empty() {
            write!(f, " none")?;
        }
        for k in contacts {
            write!(
                f,
                "\n- {} {} ({}, {}) user {} · {} · {}",
                k.first_name,
                k.last_name,
                k.role,
                k.status,
                k.username,
                k.email,
                k.phone.as_deref().unwrap_or_default()
            )?;
        }
        Ok(())
    }
}
