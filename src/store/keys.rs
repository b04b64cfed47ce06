//! The normalised forms searches compare, so that "ANN@Acme.example",
//! "ctx-1234 5678" and " Lee " find what was stored as "ann@acme.example",
//! "CTX12345678" and "lee".

/// User names and e-mail addresses: trimmed, lower-case.
pub fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Names: lower-case words without punctuation, single spaces
/// ("  Van  der Berg" → "van der berg", "Initech, Ltd." → "initech ltd",
/// "O'Brien" → "obrien").
pub fn name(s: &str) -> String {
    let kept: String = s.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Contract numbers, serial numbers and machine codes: upper-case letters
/// and digits only; spaces, dashes and other separators dropped.
pub fn code(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(lower("  ANN@Acme.Example "), "ann@acme.example");
        assert_eq!(name("  Van   der BERG "), "van der berg");
        assert_eq!(name("Initech, Ltd."), name("initech ltd"));
        assert_eq!(name("O'Brien"), "obrien");
        assert_eq!(code("ctx-1234 5678"), "CTX12345678");
        assert_eq!(code("AB:CD-EF 01"), "ABCDEF01");
    }
}
