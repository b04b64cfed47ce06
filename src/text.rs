//! Customer text at the edge: cleaning, and the parsers that turn a free-text
//! answer into a choice or a yes/no (addresses, phones and countries are
//! `crate::domain`'s).
//!
//! Every parser returns `Err(reason)` with a short sentence meant for the
//! customer, so a flow never sees invalid input and the customer always learns
//! why an answer was not accepted.

/// Removes control characters (keeping line breaks and tabs as spaces),
/// collapses runs of whitespace, trims, and cuts to `max_chars` characters.
pub fn clean_input(raw: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    let mut pending_space = false;
    let mut count = 0;
    for ch in raw.chars() {
        if ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        // Control and format characters (bidi overrides, zero-width joiners
        // used to disguise text) never reach a flow.
        if ch.is_control() || is_format_char(ch) {
            continue;
        }
        if pending_space {
            if count + 1 >= max_chars {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max_chars {
            break;
        }
        out.push(ch);
        count += 1;
    }
    out
}

fn is_format_char(ch: char) -> bool {
    matches!(ch, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The words of a name as compared across spellings and scripts:
/// transliterated to ASCII ("Крым" → "krym", "Sídorov" → "sidorov"),
/// lower-case, split at anything not a letter or digit.
pub fn folded_words(name: &str) -> Vec<String> {
    deunicode::deunicode(name)
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Lower-cases and strips surrounding punctuation: "Stop!" → "stop".
pub fn normalize_word(text: &str) -> String {
    text.trim().trim_matches(|c: char| c.is_ascii_punctuation() && c != '?').trim().to_lowercase()
}

/// Picks one of `options` from an answer: its number (1-based), its text, or a
/// close fuzzy match. Ambiguous or unknown answers are refused.
pub fn parse_choice(answer: &str, options: &[String]) -> Result<usize, String> {
    let a = normalize_word(answer);
    let n = options.len();
    if let Ok(i) = a.trim_start_matches('#').parse::<usize>() {
        return if (1..=n).contains(&i) {
            Ok(i - 1)
        } else {
            Err(format!("Please answer with a number from 1 to {n}."))
        };
    }
    let norm: Vec<String> = options.iter().map(|o| normalize_word(o)).collect();
    if let Some(i) = norm.iter().position(|o| *o == a) {
        return Ok(i);
    }
    if a.len() >= 3 {
        // Part of exactly one option ("serial", "other articles"), or an
        // answer that quotes exactly one option in full, unless that option
        // is itself part of another ("serial ser" quotes "serial" but means
        // "serial user": the spelling below decides).
        let inside_another = |i: usize| (0..n).any(|j| j != i && contains_words(&norm[j], &norm[i]));
        let partial: Vec<usize> = (0..n)
            .filter(|&i| contains_words(&norm[i], &a) || (contains_words(&a, &norm[i]) && !inside_another(i)))
            .collect();
        if partial.len() == 1 {
            return Ok(partial[0]);
        }
        // A close spelling of one option, clearly closer than the others.
        let mut scored: Vec<(f64, usize)> = (0..n)
            .map(|i| (strsim::normalized_damerau_levenshtein(&a, &norm[i]).max(word_score(&a, &norm[i])), i))
            .collect();
        scored.sort_by(|x, y| y.0.total_cmp(&x.0));
        let best = scored[0];
        let runner_up = scored.get(1).map_or(0.0, |s| s.0);
        if best.0 >= 0.75 && best.0 - runner_up >= 0.1 {
            return Ok(best.1);
        }
    }
    Err(format!(
        "Sorry, I didn't recognise that option. Please answer with a number from 1 to {n}, or the option's name."
    ))
}

/// Whether `needle` occurs in `hay` on word boundaries ("art" is not in "articles").
fn contains_words(hay: &str, needle: &str) -> bool {
    let boundary = |s: &str, i: usize| s[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
    hay.match_indices(needle)
        .any(|(i, _)| boundary(hay, i) && hay[i + needle.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric()))
}

/// How well the answer matches one word of the option ("contrat" ~ "contract").
fn word_score(answer: &str, option: &str) -> f64 {
    option.split_whitespace().map(|w| strsim::normalized_damerau_levenshtein(answer, w)).fold(0.0, f64::max)
}

const YES: &[&str] = &[
    "yes",
    "y",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "correct",
    "right",
    "please",
    "yes please",
    "of course",
    "affirmative",
    "ja",
    "oui",
    "si",
    "sí",
];
const NO: &[&str] = &[
    "no",
    "n",
    "nope",
    "nah",
    "not really",
    "no thanks",
    "no thank you",
    "negative",
    "wrong",
    "incorrect",
    "nein",
    "non",
];

/// Yes/no in words.
pub fn parse_yes_no(answer: &str) -> Result<bool, String> {
    let a = normalize_word(answer);
    if YES.contains(&a.as_str()) {
        Ok(true)
    } else if NO.contains(&a.as_str()) {
        Ok(false)
    } else {
        Err("Please answer yes or no.".to_string())
    }
}

/// Whether a name holds a link (`https://…`, `www.…`, `host.tld/path`):
/// names go into mails to other people, which must not carry links a
/// customer typed. A bare domain (`Booking.com`) is a name.
pub fn looks_like_link(text: &str) -> bool {
    static LINK: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)(://|\bwww\.|[a-z0-9-]+\.[a-z]{2,}/)").expect("link pattern")
    });
    LINK.is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_names_are_recognised() {
        for bad in ["URGENT Verify payment at https://evil.example/pay3", "www.evil.example", "pay evil.example/x"] {
            assert!(looks_like_link(bad), "{bad}");
        }
        for good in ["Booking.com", "Initech, Ltd.", "Acme Widgets GmbH", "AT&T", "@everyone"] {
            assert!(!looks_like_link(good), "{good}");
        }
    }

    #[test]
    fn cleaning_removes_controls_and_caps_length() {
        assert_eq!(clean_input("  hi\u{0}\u{7}  there\r\n\u{202E}x ", 100), "hi there x");
        assert_eq!(clean_input("abcdef", 3), "abc");
        assert_eq!(clean_input("ab  cd", 3), "ab");
        assert_eq!(clean_input("\u{1b}[31mred", 100), "[31mred");
    }

    #[test]
    fn choices_by_number_text_and_fuzzy() {
        let opts: Vec<String> =
            ["User name", "E-mail address", "Contract number", "Serial number"].iter().map(|s| s.to_string()).collect();
        assert_eq!(parse_choice("2", &opts), Ok(1));
        assert_eq!(parse_choice("serial number", &opts), Ok(3));
        assert_eq!(parse_choice("Serial", &opts), Ok(3));
        assert_eq!(parse_choice("contarct numbr", &opts), Ok(2));
        assert_eq!(parse_choice("by serial number please", &opts), Ok(3));
        let more: Vec<String> =
            ["Show me the other articles", "Contact customer service"].iter().map(|s| s.to_string()).collect();
        assert_eq!(parse_choice("other articles", &more), Ok(0));
        assert!(parse_choice("art", &more).is_err());
        assert!(parse_choice("5", &opts).is_err());
        assert!(parse_choice("number", &opts).is_err(), "ambiguous: three options contain 'number'");
        assert!(parse_choice("pizza", &opts).is_err());
    }

    #[test]
    fn yes_no() {
        assert_eq!(parse_yes_no("Yes!"), Ok(true));
        assert_eq!(parse_yes_no(" nope "), Ok(false));
        assert!(parse_yes_no("maybe").is_err());
    }
}

/// Postal code formats of the countries we know, as regular expressions on
/// the upper-cased code. Countries not listed accept any non-empty code of
/// letters, digits, spaces and dashes; countries without postal codes accept
/// an empty one.
const POSTAL_CODES: &[(&str, &str)] = &[
    ("US", r"^\d{5}(-\d{4})?$"),
    ("CA", r"^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d$"),
    ("GB", r"^(GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})$"),
    ("DE", r"^\d{5}$"),
    ("FR", r"^\d{5}$"),
    ("ES", r"^\d{5}$"),
    ("IT", r"^\d{5}$"),
    ("NL", r"^\d{4} ?[A-Z]{2}$"),
    ("BE", r"^\d{4}$"),
    ("CH", r"^\d{4}$"),
    ("AT", r"^\d{4}$"),
    ("SE", r"^\d{3} ?\d{2}$"),
    ("NO", r"^\d{4}$"),
    ("DK", r"^\d{4}$"),
    ("FI", r"^\d{5}$"),
    ("PL", r"^\d{2}-\d{3}$"),
    ("PT", r"^\d{4}-\d{3}$"),
    ("IE", r"^[A-Z]\d[\dW] ?[A-Z\d]{4}$"),
    ("JP", r"^\d{3}-?\d{4}$"),
    ("AU", r"^\d{4}$"),
    ("NZ", r"^\d{4}$"),
    ("IN", r"^\d{6}$"),
    ("BR", r"^\d{5}-?\d{3}$"),
    ("MX", r"^\d{5}$"),
    ("SG", r"^\d{6}$"),
    ("CN", r"^\d{6}$"),
    ("KR", r"^\d{5}$"),
    ("ZA", r"^\d{4}$"),
];

/// Countries where addresses have no postal code.
const NO_POSTAL_CODES: &[&str] = &["AE", "HK", "QA", "BS", "BZ", "JM", "PA"];

/// Checks a postal code for a country (ISO alpha-2).
pub fn check_postal_code(code: &str, country: &str) -> Result<(), String> {
    let code = code.trim().to_uppercase();
    if code.is_empty() {
        return if NO_POSTAL_CODES.contains(&country) {
            Ok(())
        } else {
            Err(format!("a postal code is needed for {country}"))
        };
    }
    static COMPILED: std::sync::OnceLock<std::collections::HashMap<&'static str, regex::Regex>> =
        std::sync::OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        POSTAL_CODES.iter().map(|(c, p)| (*c, regex::Regex::new(p).expect("valid postal code pattern"))).collect()
    });
    let ok = match compiled.get(country) {
        Some(re) => re.is_match(&code),
        None => code.len() <= 12 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-'),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{code:?} is not a valid postal code for {country}"))
    }
}

#[cfg(test)]
mod postal_tests {
    use super::check_postal_code;

    #[test]
    fn postal_codes_per_country() {
        assert!(check_postal_code("94043", "US").is_ok());
        assert!(check_postal_code("94043-1351", "US").is_ok());
        assert!(check_postal_code("9404", "US").is_err());
        assert!(check_postal_code("SW1A 1AA", "GB").is_ok());
        assert!(check_postal_code("k1a 0b1", "CA").is_ok());
        assert!(check_postal_code("10115", "DE").is_ok());
        assert!(check_postal_code("1011", "DE").is_err());
        assert!(check_postal_code("", "AE").is_ok());
        assert!(check_postal_code("", "FR").is_err());
        assert!(check_postal_code("AB-12", "KE").is_ok());
    }
}
