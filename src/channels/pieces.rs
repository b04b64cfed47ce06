//! Long texts cut into pieces under a platform's length limit.

/// Splits `text` into pieces of at most `max` characters, at line breaks
/// where possible, else at spaces, else at the limit. `mend(rest, cut)`
/// moves a cut (a byte offset into `rest`) back so that it does not break a
/// platform's escape in two; the line break or space a piece ends at is
/// dropped.
pub fn split(text: &str, max: usize, mend: impl Fn(&str, usize) -> usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..limit];
        let cut = window.rfind('\n').or_else(|| window.rfind(' ')).filter(|&i| i > 0).unwrap_or(limit);
        let cut = mend(rest, cut);
        pieces.push(rest[..cut].to_string());
        rest = rest[cut..].strip_prefix(['\n', ' ']).unwrap_or(&rest[cut..]);
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces
}
