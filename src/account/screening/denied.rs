//! Denied parties: the names in `screening.denied_parties`, and a list in
//! the format of the public OFAC SDN CSV files (`sdn.csv`, with aliases in
//! `alt.csv`) in `screening.sdn_dir`. Names are compared on normalised
//! tokens: case, accents (and other scripts), punctuation, legal forms and
//! word order do not matter.

use std::{collections::HashMap, path::Path};

/// One name to screen against.
#[derive(Debug, Clone, PartialEq)]
pub struct Party {
    pub name: String,
    /// Where it comes from: `config`, or `sdn.csv` / `alt.csv` and the entry number.
    pub source: String,
    tokens: Vec<String>,
}

/// Legal forms dropped before names are compared.
const LEGAL_FORMS: &[&str] = &[
    "llc",
    "ltd",
    "limited",
    "inc",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "bv",
    "co",
    "corp",
    "corporation",
    "plc",
    "kk",
    "pty",
    "ab",
    "ooo",
    "oao",
    "zao",
    "pao",
    "jsc",
    "ojsc",
    "cjsc",
];

/// A name's comparable tokens.
pub fn tokens(name: &str) -> Vec<String> {
    crate::text::folded_words(name).into_iter().filter(|t| !LEGAL_FORMS.contains(&t.as_str())).collect()
}

/// How alike two token lists are, 0 to 1, in any word order.
fn likeness(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let plain = strsim::normalized_levenshtein(&a.join(" "), &b.join(" "));
    let (mut sa, mut sb) = (a.to_vec(), b.to_vec());
    sa.sort();
    sb.sort();
    plain.max(strsim::normalized_levenshtein(&sa.join(" "), &sb.join(" "))).max(word_by_word(a, b))
}

/// Each word paired with its likest word of the other name (an initial
/// counts as 0.9 of a word it starts), averaged over the longer name: so
/// "Ivan P. Sidorow" is close to "SIDOROV, Ivan Petrovich".
fn word_by_word(a: &[String], b: &[String]) -> f64 {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut free: Vec<bool> = vec![true; long.len()];
    let mut total = 0.0;
    for w in short {
        let best = long
            .iter()
            .enumerate()
            .filter(|(i, _)| free[*i])
            .map(|(i, l)| {
                let score = if w.len() == 1 || l.len() == 1 {
                    if w.chars().next() == l.chars().next() {
                        0.9
                    } else {
                        0.0
                    }
                } else {
                    strsim::normalized_levenshtein(w, l)
                };
                (i, score)
            })
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((i, score)) = best {
            free[i] = false;
            total += score;
        }
    }
    total / long.len() as f64
}

/// How alike two names are, 0 to 1.
pub fn similarity(a: &str, b: &str) -> f64 {
    likeness(&tokens(a), &tokens(b))
}

/// The list, indexed by the first three letters of each token, so a name
/// is compared only with parties that share the start of a word with it.
#[derive(Debug, Clone, Default)]
pub struct DeniedParties {
    parties: Vec<Party>,
    by_prefix: HashMap<String, Vec<u32>>,
}

fn prefix(token: &str) -> String {
    token.chars().take(3).collect()
}

impl DeniedParties {
    pub fn new(names: impl IntoIterator<Item = (String, String)>) -> DeniedParties {
        let mut list = DeniedParties::default();
        for (name, source) in names {
            let tokens = tokens(&name);
            if tokens.is_empty() {
                continue;
            }
            let i = list.parties.len() as u32;
            let mut seen = std::collections::HashSet::new();
            for t in &tokens {
                if seen.insert(prefix(t)) {
                    list.by_prefix.entry(prefix(t)).or_default().push(i);
                }
            }
            list.parties.push(Party { name, source, tokens });
        }
        list
    }

    pub fn len(&self) -> usize {
        self.parties.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parties.is_empty()
    }

    /// The party most like `name`, with its likeness.
    pub fn closest(&self, name: &str) -> Option<(f64, &Party)> {
        let query = tokens(name);
        let mut candidates: Vec<u32> =
            query.iter().filter_map(|t| self.by_prefix.get(&prefix(t))).flatten().copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .map(|i| &self.parties[i as usize])
            .map(|p| (likeness(&query, &p.tokens), p))
            .max_by(|x, y| x.0.total_cmp(&y.0))
    }
}

/// Reads `sdn.csv` (and `alt.csv`, if there) from `dir`: every primary
/// name and alias, with its source. The files have no header; `-0-` is an
/// empty field; text that is not UTF-8 is read as Latin-1.
pub fn load_sdn(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let mut names = Vec::new();
    read_names(&dir.join("sdn.csv"), 1, &mut names)?;
    let alt = dir.join("alt.csv");
    if alt.exists() {
        read_names(&alt, 3, &mut names)?;
    }
    Ok(names)
}

fn read_names(path: &Path, column: usize, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("sdn.csv").to_string();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let text = |i: usize| {
            let raw = record.get(i).unwrap_or_default();
            match std::str::from_utf8(raw) {
                Ok(s) => s.trim().to_string(),
                Err(_) => raw.iter().map(|&b| b as char).collect::<String>().trim().to_string(),
            }
        };
        let (entry, name) = (text(0), text(column));
        if name.is_empty() || name == "-0-" || entry.starts_with('\u{1a}') {
            continue;
        }
        out.push((name, format!("{file_name}:{entry}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_accents_form_or_order() {
        assert!(similarity("Northern Star Shipping LLC", "northern star shipping") > 0.99);
        assert!(similarity("SIDOROV, Ivan Petrovich", "Ivan Petrovich Sídorov") > 0.99);
        assert!(similarity("Иван Петрович Сидоров", "Sidorov Ivan Petrovich") > 0.99);
        assert!(similarity("Acme Widgets GmbH", "Acme Proliferation Trading") < 0.6);
    }

    #[test]
    fn the_closest_party_is_found_through_the_index() {
        let list = DeniedParties::new([
            ("AEROCARIBBEAN AIRLINES".to_string(), "sdn.csv:36".to_string()),
            ("SIDOROV, Ivan Petrovich".to_string(), "sdn.csv:9001".to_string()),
        ]);
        let (score, party) = list.closest("Ivan P. Sidorow").unwrap();
        assert_eq!(party.source, "sdn.csv:9001");
        assert!(score > 0.8, "{score}");
        assert!(list.closest("Zebra Holdings").is_none());
    }
}
