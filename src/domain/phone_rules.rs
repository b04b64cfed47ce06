//! phonenumber's validity rules, with their patterns compiled once.
//!
//! phonenumber 0.3 matches every pattern through one shared, mutex-guarded
//! LRU of compiled regexes keyed by the pattern's text: each match locks,
//! hashes a pattern of up to a few hundred characters and reorders the
//! LRU. `is_valid` matches up to a dozen patterns, and `country().id()`
//! searches the regions of a shared calling code again; together they were
//! 7 of the 9 µs a number cost, and an import of a million companies checks
//! three million numbers. Here the library's own metadata
//! (`phonenumber::metadata::DATABASE`) is compiled into plain regexes, each
//! pattern once, when a number first needs it, and the library's two
//! decisions are made with them the same way: which region's rules apply
//! (`validator::source_for`), and whether the number is of a known type
//! there (`validator::number_type`).
//! A test checks the answers agree with the library's on every number of
//! a demo directory and on random digits.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, OnceLock},
};

use phonenumber::{metadata::DATABASE, PhoneNumber};
use regex::Regex;

/// A pattern as the library compiles it (its metadata spaces patterns
/// out), anchored: the library asks only whether a match starts at the
/// first digit (`find(..).start() == 0`), which an anchored `is_match`
/// answers without looking for where a match ends or begins. ASCII classes:
/// a national number is ASCII digits, and Unicode's `\d` made each of the
/// ~1,400 patterns an automaton of ~90 KB (126 MB for all of them, against
/// 13 MB so).
fn compile(pattern: &str) -> Option<Regex> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})")).ignore_whitespace(true).unicode(false).build().ok()
}

/// One of the metadata's patterns, compiled on its first use. A number
/// needs few of its calling code's patterns: calling code 1 has 25 regions
/// and 184 patterns (1.7 MB compiled), and a number of the United States
/// needs two or three of them, the US's own (the first region, which has
/// no leading-digits pattern). Compiled eagerly, every first number of a
/// country kept all of them in memory for good (`serve` idles at what its
/// first day needed).
struct Pattern {
    source: &'static str,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    fn new(source: &'static str) -> Pattern {
        Pattern { source, compiled: OnceLock::new() }
    }

    /// The compiled pattern, or `None` if it does not compile (a pattern
    /// the library could not use either: it is as if it were absent).
    fn regex(&self) -> Option<&Regex> {
        self.compiled.get_or_init(|| compile(self.source)).as_ref()
    }
}

/// One type's pattern (`Descriptor`): the lengths it allows and the
/// pattern the national number must match from its start.
struct Desc {
    lengths: &'static [u16],
    pattern: Pattern,
}

impl Desc {
    fn of(d: &'static phonenumber::metadata::Descriptor) -> Desc {
        Desc { lengths: d.possible_length(), pattern: Pattern::new(d.national_number().as_str()) }
    }

    /// `Descriptor::is_match`.
    fn matches(&self, national: &str) -> bool {
        if !self.lengths.is_empty() && !self.lengths.contains(&(national.len() as u16)) {
            return false;
        }
        self.pattern.regex().is_some_and(|re| re.is_match(national))
    }
}

/// One region's rules (`Metadata`).
struct Region {
    id: &'static str,
    leading_digits: Option<Pattern>,
    general: Desc,
    /// Every type `number_type` tries after the general pattern; any match
    /// makes the type known. Fixed line and mobile first: most numbers are
    /// one of them, and a pattern is compiled only when it is reached.
    types: Vec<Desc>,
}

impl Region {
    fn of(meta: &'static phonenumber::metadata::Metadata) -> Region {
        let d = meta.descriptors();
        let types = [
            d.fixed_line(),
            d.mobile(),
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        Region {
            id: meta.id(),
            leading_digits: meta.leading_digits().map(|p| Pattern::new(p.as_str())),
            general: Desc::of(d.general()),
            types: types.into_iter().flatten().map(Desc::of).collect(),
        }
    }

    /// `number_type(meta, national) != Type::Unknown`.
    fn knows(&self, national: &str) -> bool {
        self.general.matches(national) && self.types.iter().any(|t| t.matches(national))
    }
}

/// The regions of one calling code, in the library's order, and whether the
/// code is non-geographic (`001`: the rules are the code's own).
struct Code {
    regions: Vec<Region>,
    non_geographic: bool,
}

impl Code {
    fn of(code: u16) -> Code {
        let ids = DATABASE.region(&code).unwrap_or_default();
        if ids.len() == 1 {
            let meta = if ids[0] == "001" {
                DATABASE.by_code(&code).and_then(|m| m.into_iter().next())
            } else {
                DATABASE.by_id(ids[0])
            };
            return Code { regions: meta.map(Region::of).into_iter().collect(), non_geographic: ids[0] == "001" };
        }
        let regions = ids.iter().filter_map(|id| DATABASE.by_id(*id)).map(Region::of).collect();
        Code { regions, non_geographic: false }
    }

    /// `validator::source_for`: the region whose rules apply.
    fn source_for(&self, national: &str) -> Option<&Region> {
        if self.regions.len() == 1 {
            return self.regions.first();
        }
        self.regions.iter().find(|r| match r.leading_digits.as_ref().and_then(Pattern::regex) {
            Some(leading) => leading.is_match(national),
            None => r.knows(national),
        })
    }
}

#[cfg(test)]
impl Code {
    /// How many of the code's patterns are compiled, of how many.
    fn compiled(&self) -> (usize, usize) {
        let patterns = self.regions.iter().flat_map(|r| {
            let descs = std::iter::once(&r.general).chain(&r.types).map(|d| &d.pattern);
            r.leading_digits.iter().chain(descs)
        });
        patterns.fold((0, 0), |(done, all), p| (done + usize::from(p.compiled.get().is_some()), all + 1))
    }
}

/// Every calling code the metadata knows, its regions' table built on first
/// use (their patterns are compiled later still, as numbers reach them).
/// (Calling codes have one to three digits; the database's own iterator
/// holds one non-geographic entry only, as they share the id `001`.)
static CODES: LazyLock<HashMap<u16, OnceLock<Arc<Code>>>> =
    LazyLock::new(|| (1..1000u16).filter(|c| DATABASE.region(c).is_some()).map(|c| (c, OnceLock::new())).collect());

fn code(value: u16) -> Option<Arc<Code>> {
    CODES.get(&value).map(|cell| cell.get_or_init(|| Arc::new(Code::of(value))).clone())
}

/// What the library would say of a parsed number: whether it is valid
/// (`phonenumber::is_valid`), and its region (`number.country().id()`, as
/// the region's code: `"US"`; `None` for a non-geographic number).
pub(super) fn check(number: &PhoneNumber) -> (bool, Option<String>) {
    let Some(code) = code(number.code().value()) else { return (false, None) };
    // The library reads validity with the national number's leading zeros
    // and the region without them (Italy's numbers keep their zero).
    let with_zeros = number.national().to_string();
    let valid = code.source_for(&with_zeros).is_some_and(|r| r.knows(&with_zeros));
    let region = if code.non_geographic {
        None
    } else {
        code.source_for(&number.national().value().to_string()).map(|r| r.id.to_string())
    };
    (valid, region)
}

/// The number in E.164, as the library's E164 formatter writes it.
pub(super) fn e164(number: &PhoneNumber) -> String {
    format!("+{}{}", number.code().value(), number.national())
}

#[cfg(test)]
mod tests {
    use phonenumber::country::Id;
    use rand::{rngs::StdRng, Rng as _, SeedableRng as _};

    /// The library's own answers, the slow way.
    fn library(number: &phonenumber::PhoneNumber) -> (bool, Option<String>, String) {
        let region = number.country().id().map(|id| format!("{id:?}"));
        (phonenumber::is_valid(number), region, number.format().mode(phonenumber::Mode::E164).to_string())
    }

    #[test]
    fn agrees_with_the_library_on_random_numbers_of_many_countries() {
        let mut rng = StdRng::seed_from_u64(11);
        let regions = ["US", "CA", "DE", "GB", "FR", "IT", "VA", "CH", "AT", "NL", "UA", "RU", "KZ", "JP", "BR", "IN"];
        let mut valid = 0;
        for _ in 0..10_000 {
            let region = regions[rng.gen_range(0..regions.len())];
            let id: Id = region.parse().unwrap();
            let len = rng.gen_range(4..13);
            let mut text: String = (0..len).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
            if rng.gen_bool(0.3) {
                text = format!("+{}{text}", rng.gen_range(1..999));
            }
            let Ok(number) = phonenumber::parse(Some(id), &text) else { continue };
            let (ok, got_region) = super::check(&number);
            let (want_ok, want_region, want_e164) = library(&number);
            assert_eq!((ok, &got_region), (want_ok, &want_region), "{text:?} in {region}");
            assert_eq!(super::e164(&number), want_e164, "{text:?}");
            valid += usize::from(ok);
        }
        assert!(valid > 500, "the sample holds valid numbers too ({valid})");
    }

    /// A number compiles only the patterns its decisions reach: a US number
    /// needs none of calling code 1's other 24 regions' types (it is the
    /// code's first region, whose leading digits are absent).
    #[test]
    fn a_number_compiles_only_the_patterns_it_needs() {
        let code = super::Code::of(1);
        assert_eq!(code.compiled().0, 0, "nothing compiled before a number");
        let number = phonenumber::parse(None, "+1 201 555 0123").unwrap();
        let national = number.national().to_string();
        let region = code.source_for(&national).expect("a region of code 1");
        assert_eq!((region.id, region.knows(&national)), ("US", true));
        let (compiled, all) = code.compiled();
        assert!(all > 150, "code 1 has {all} patterns");
        assert!(compiled <= 5, "{compiled} of {all} patterns compiled for one US number");
    }

    #[test]
    fn agrees_with_the_library_on_the_demo_directory_s_numbers() {
        let dir = tempfile::tempdir().unwrap();
        crate::directory::demo::generate(dir.path(), 300, 3, false).unwrap();
        let mut checked = 0;
        for file in ["companies.csv", "contacts.csv"] {
            let mut reader = csv::Reader::from_path(dir.path().join(file)).unwrap();
            for record in reader.records() {
                let record = record.unwrap();
                let phone = record[if file == "companies.csv" { 7 } else { 5 }].to_string();
                if phone.is_empty() {
                    continue;
                }
                let number = phonenumber::parse(None, &phone).unwrap();
                let (ok, region) = super::check(&number);
                let (want_ok, want_region, _) = library(&number);
                assert_eq!((ok, region), (want_ok, want_region), "{phone}");
                checked += 1;
            }
        }
        assert!(checked > 500);
    }
}
