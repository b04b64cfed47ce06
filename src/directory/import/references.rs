//! The checks of a chunk that need the store or the rest of the import:
//! e-mail addresses another contact already uses, user names twice in one
//! import, the administrator a contract names.

use std::{
    collections::HashSet,
    hash::{BuildHasher, BuildHasherDefault, DefaultHasher},
};

use crate::store::{
    directory::{DirectoryRow as Row, Import},
    keys,
};

use super::rows::Kind;

/// What this import has written so far, as 64-bit hashes of the keys (8
/// bytes a contact however long its name: a 3.5-million-contact import
/// keeps ~60 MB here rather than asking the store twice per row). Two keys
/// sharing a hash, about one chance in 10^12 in such an import, would
/// report a good row as a duplicate: it is reported, not lost.
#[derive(Default)]
pub(super) struct Seen {
    usernames: Hashes,
    emails: Hashes,
    /// Whether contacts were on record before the import: only then can an
    /// address belong to someone this import does not write.
    contacts_before: bool,
}

impl Seen {
    pub(super) fn new(contacts_before: bool) -> Seen {
        Seen { contacts_before, ..Default::default() }
    }
}

/// A set of 64-bit hashes, each its own hash in the table (hashing a hash
/// again, as a `HashSet<u64>` does, only costs time).
#[derive(Default)]
struct Hashes(hashbrown::HashTable<u64>);

impl Hashes {
    /// Adds `h`; `false` if it was there.
    fn insert(&mut self, h: u64) -> bool {
        if self.0.find(h, |&x| x == h).is_some() {
            return false;
        }
        self.0.insert_unique(h, h, |&x| x);
        true
    }
}

fn hash(key: &str) -> u64 {
    // Fixed keys: the same on every run (no need for DoS resistance here).
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

/// Checks one chunk; rows that fail go to `bad` as `(line, message)`, the
/// rest come back.
pub(super) async fn check(
    import: &mut Import,
    kind: Kind,
    rows: Vec<(u64, Row)>,
    file: &str,
    seen: &mut Seen,
    bad: &mut Vec<(u64, String)>,
) -> anyhow::Result<Vec<Row>> {
    match kind {
        Kind::Companies | Kind::Licenses => Ok(rows.into_iter().map(|(_, r)| r).collect()),
        Kind::Contacts => contacts(import, rows, file, seen, bad).await,
        Kind::Contracts => contracts(import, rows, file, bad).await,
    }
}

async fn contacts(
    import: &mut Import,
    rows: Vec<(u64, Row)>,
    file: &str,
    seen: &mut Seen,
    bad: &mut Vec<(u64, String)>,
) -> anyhow::Result<Vec<Row>> {
    let email_keys: Vec<String> = rows
        .iter()
        .filter_map(|(_, r)| match r {
            Row::Contact { email, .. } => Some(keys::lower(email)),
            _ => None,
        })
        .collect();
    // Who else already uses these addresses (`email_key → username_key`).
    let owners = if seen.contacts_before { import.email_owners(&email_keys).await? } else { Default::default() };
    let mut checked = Vec::with_capacity(rows.len());
    for ((line, row), email_key) in rows.into_iter().zip(email_keys) {
        let Row::Contact { username, email, .. } = &row else { continue };
        let username_key = keys::lower(username);
        if !seen.usernames.insert(hash(&username_key)) {
            bad.push((line, format!("{file}:{line}: username {username:?} appears more than once in this import")));
            continue;
        }
        let taken = owners.get(&email_key).is_some_and(|u| *u != username_key);
        if taken || !seen.emails.insert(hash(&email_key)) {
            bad.push((line, format!("{file}:{line}: email {email:?} already belongs to another contact")));
            continue;
        }
        checked.push(row);
    }
    Ok(checked)
}

async fn contracts(
    import: &mut Import,
    rows: Vec<(u64, Row)>,
    file: &str,
    bad: &mut Vec<(u64, String)>,
) -> anyhow::Result<Vec<Row>> {
    let org_ids: Vec<&str> = rows
        .iter()
        .filter_map(|(_, r)| match r {
            Row::Contract { org_id, .. } => Some(org_id.as_str()),
            _ => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let admins = import.admins(&org_ids).await?;
    let mut checked = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        let Row::Contract { org_id, admin, .. } = &row else { continue };
        if admins.contains(&(org_id.to_string(), keys::lower(admin))) {
            checked.push(row);
        } else {
            bad.push((line, format!("{file}:{line}: admin_username {admin:?} is not an administrator of {org_id}")));
        }
    }
    Ok(checked)
}
