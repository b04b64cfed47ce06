//! The companies a file's rows may refer to, with the country each one's
//! phone numbers are read in, kept compact: an import of the contacts of a
//! million companies holds all of them for the whole file.
//!
//! One string holds every Org ID end to end; the table holds 8 bytes a
//! company (where its Org ID starts, how long it is, which country), not a
//! `String` pair each (about 130 MB at a million companies, against 30 MB
//! here).

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher as _;

use crate::domain::Country;

#[derive(Clone, Copy)]
struct Slot {
    start: u32,
    len: u8,
    country: u8,
}

#[derive(Default)]
pub(crate) struct Companies {
    ids: String,
    slots: HashTable<Slot>,
    /// Each country once; slots name them by index.
    countries: Vec<Country>,
    hasher: DefaultHashBuilder,
}

impl Companies {
    pub(crate) fn new() -> Companies {
        Companies::default()
    }

    fn id(&self, slot: &Slot) -> &str {
        &self.ids[slot.start as usize..slot.start as usize + slot.len as usize]
    }

    /// Adds a company (a second time: its country is updated).
    pub(crate) fn insert(&mut self, org_id: &str, country: &Country) {
        let country = match self.countries.iter().position(|c| c == country) {
            Some(i) => i,
            None => {
                self.countries.push(country.clone());
                self.countries.len() - 1
            }
        };
        // Org IDs are at most 64 bytes and there are far fewer than 250
        // countries (checked where they are parsed).
        let (len, country) = (org_id.len().min(u8::MAX as usize) as u8, country as u8);
        let hash = self.hasher.hash_one(org_id);
        let Companies { ids, slots, hasher, .. } = self;
        match slots.find_mut(hash, |s| &ids[s.start as usize..s.start as usize + s.len as usize] == org_id) {
            Some(slot) => slot.country = country,
            None => {
                let start = u32::try_from(ids.len()).expect("fewer than 4 GB of Org IDs");
                ids.push_str(&org_id[..len as usize]);
                slots.insert_unique(hash, Slot { start, len, country }, |s| {
                    hasher.hash_one(&ids[s.start as usize..s.start as usize + s.len as usize])
                });
            }
        }
    }

    /// The country of a company on record.
    pub(crate) fn country(&self, org_id: &str) -> Option<&Country> {
        let slot = self.slots.find(self.hasher.hash_one(org_id), |s| self.id(s) == org_id)?;
        self.countries.get(slot.country as usize)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::{Companies, Country};

    #[test]
    fn companies_are_found_by_their_org_id_with_their_country() {
        let (de, us) = (Country::parse("DE").unwrap(), Country::parse("US").unwrap());
        let mut c = Companies::new();
        for i in 0..10_000 {
            c.insert(&format!("ORG-{i}"), if i % 3 == 0 { &de } else { &us });
        }
        c.insert("ORG-3", &us);
        assert_eq!(c.len(), 10_000);
        assert_eq!(c.country("ORG-0"), Some(&de));
        assert_eq!(c.country("ORG-3"), Some(&us), "the later country wins");
        assert_eq!(c.country("ORG-9998"), Some(&us));
        assert_eq!(c.country("ORG-10000"), None);
        assert_eq!(c.country("ORG-"), None);
    }
}
