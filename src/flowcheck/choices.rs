//! Branches on choices that no option produces. A flow asks
//! `let how = choose(text, [["username", "User name"], …])` and branches
//! with `switch how { "username" => … }` or `how == "username"`; an arm or a
//! comparison naming a value none of the options returns is a branch that
//! can never run (a reworded label, a typo). Checked on the source text: the
//! options must be literal (a list built at run time is not checked).

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// Punctuation: one character, or `=>`, `==`, `!=`.
    Punct(&'static str),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
}

const PUNCT: [&str; 16] = ["=>", "==", "!=", "(", ")", "[", "]", "{", "}", ",", "=", "|", ";", ".", ":", "#"];

/// A position in the source, moving one character at a time.
struct Cursor {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Cursor {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn bump(&mut self) {
        if self.peek(0) == Some('\n') {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        self.i += 1;
    }
}

/// Enough of rhai's lexical grammar to find strings, names and brackets:
/// comments are skipped, strings (`"…"`, `` `…` ``) read with escapes.
fn tokens(source: &str) -> Vec<Token> {
    let mut c = Cursor { chars: source.chars().collect(), i: 0, line: 1, col: 1 };
    let mut out = Vec::new();
    while let Some(ch) = c.peek(0) {
        let (line, col) = (c.line, c.col);
        if ch == '/' && c.peek(1) == Some('/') {
            while c.peek(0).is_some_and(|x| x != '\n') {
                c.bump();
            }
        } else if ch == '/' && c.peek(1) == Some('*') {
            while c.peek(0).is_some() && !(c.peek(0) == Some('*') && c.peek(1) == Some('/')) {
                c.bump();
            }
            c.bump();
            c.bump();
        } else if ch == '"' || ch == '`' {
            let mut value = String::new();
            c.bump();
            while let Some(x) = c.peek(0).filter(|x| *x != ch) {
                if x == '\\' {
                    c.bump();
                }
                value.extend(c.peek(0));
                c.bump();
            }
            c.bump();
            // A template with interpolation is no literal.
            let tok = if ch == '`' && value.contains("${") { Tok::Punct("`") } else { Tok::Str(value) };
            out.push(Token { tok, line, col });
        } else if ch.is_alphanumeric() || ch == '_' {
            let mut name = String::new();
            while let Some(x) = c.peek(0).filter(|x| x.is_alphanumeric() || *x == '_') {
                name.push(x);
                c.bump();
            }
            out.push(Token { tok: Tok::Ident(name), line, col });
        } else if ch.is_whitespace() {
            c.bump();
        } else {
            let two: String = [Some(ch), c.peek(1)].into_iter().flatten().collect();
            let p = PUNCT
                .iter()
                .find(|p| p.len() == 2 && **p == two)
                .or_else(|| PUNCT.iter().find(|p| p.len() == 1 && p.starts_with(ch)));
            for _ in 0..p.map_or(1, |p| p.len()) {
                c.bump();
            }
            out.push(Token { tok: Tok::Punct(p.copied().unwrap_or("?")), line, col });
        }
    }
    out
}

/// The index of the bracket closing the one at `open`.
fn closing(t: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, token) in t.iter().enumerate().skip(open) {
        match token.tok {
            Tok::Punct("(" | "[" | "{") => depth += 1,
            Tok::Punct(")" | "]" | "}") => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits `t[from..to]` at the commas outside brackets.
fn top_level(t: &[Token], from: usize, to: usize) -> Vec<(usize, usize)> {
    let (mut parts, mut start, mut depth) = (Vec::new(), from, 0);
    for (i, token) in t.iter().enumerate().take(to).skip(from) {
        match token.tok {
            Tok::Punct("(" | "[" | "{") => depth += 1,
            Tok::Punct(")" | "]" | "}") => depth -= 1,
            Tok::Punct(",") if depth == 0 => {
                parts.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < to {
        parts.push((start, to));
    }
    parts
}

/// What a literal option list returns: labels, or the keys of `[key, label]`
/// pairs. `None` when any option is not literal.
fn option_values(t: &[Token], from: usize, to: usize) -> Option<BTreeSet<String>> {
    if t.get(from).map(|x| &x.tok) != Some(&Tok::Punct("[")) || closing(t, from)? + 1 != to {
        return None;
    }
    let mut values = BTreeSet::new();
    for (a, b) in top_level(t, from + 1, to - 1) {
        match &t[a..b] {
            [Token { tok: Tok::Str(s), .. }] => values.insert(s.clone()),
            [Token { tok: Tok::Punct("["), .. }, Token { tok: Tok::Str(k), .. }, Token { tok: Tok::Punct(","), .. }, Token { tok: Tok::Str(_), .. }, Token { tok: Tok::Punct("]"), .. }] => {
                values.insert(k.clone())
            }
            _ => return None,
        };
    }
    Some(values)
}

/// One `file:line:col: …` line per branch on a value no option returns.
pub fn check(file: &str, source: &str) -> Vec<String> {
    let t = tokens(source);
    let mut problems = Vec::new();
    // The options of the latest `let NAME = choose(…)` of each name.
    let mut choices: std::collections::HashMap<String, (usize, BTreeSet<String>)> = Default::default();
    let mut report = |token: &Token, value: &str, name: &str, (line, values): &(usize, BTreeSet<String>)| {
        let offered: Vec<&str> = values.iter().map(String::as_str).collect();
        problems.push(format!(
            "{file}:{}:{}: {value:?} is not a value the choose on line {line} can give `{name}` (it gives: {})",
            token.line,
            token.col,
            offered.join(", ")
        ));
    };
    for i in 0..t.len() {
        match (&t[i].tok, t.get(i + 1).map(|x| &x.tok), t.get(i + 2).map(|x| &x.tok), t.get(i + 3).map(|x| &x.tok)) {
            (Tok::Ident(kw), Some(Tok::Ident(name)), Some(Tok::Punct("=")), Some(Tok::Ident(f)))
                if kw == "let" && (f == "choose" || f == "choose_private") =>
            {
                let open = i + 4;
                let values = t.get(open).filter(|x| x.tok == Tok::Punct("(")).and_then(|_| {
                    let close = closing(&t, open)?;
                    let args = top_level(&t, open + 1, close);
                    let (a, b) = *args.get(1)?;
                    option_values(&t, a, b)
                });
                match values {
                    Some(v) => choices.insert(name.clone(), (t[i].line, v)),
                    None => choices.remove(name),
                };
            }
            (Tok::Ident(kw), Some(Tok::Ident(name)), Some(Tok::Punct("{")), _) if kw == "switch" => {
                let Some(known) = choices.get(name) else { continue };
                let Some(close) = closing(&t, i + 2) else { continue };
                for (a, b) in top_level(&t, i + 3, close) {
                    let arrow = (a..b).find(|&j| t[j].tok == Tok::Punct("=>")).unwrap_or(a);
                    for token in &t[a..arrow] {
                        if let Tok::Str(value) = &token.tok {
                            if !known.1.contains(value) {
                                report(token, value, name, known);
                            }
                        }
                    }
                }
            }
            (Tok::Ident(name), Some(Tok::Punct("==" | "!=")), _, _) => {
                if let (Some(known), Some(token @ Token { tok: Tok::Str(value), .. })) =
                    (choices.get(name), t.get(i + 2))
                {
                    if !known.1.contains(value) {
                        report(token, value, name, known);
                    }
                }
            }
            (Tok::Str(value), Some(Tok::Punct("==" | "!=")), Some(Tok::Ident(name)), _) => {
                if let Some(known) = choices.get(name) {
                    if !known.1.contains(value) {
                        report(&t[i], value, name, known);
                    }
                }
            }
            _ => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::check;

    const FLOW: &str = r#"
// a comment with "quotes" => and switch pick { "x" => 1 }
let pick = choose("What?", [
    ["find", "Find my account"],
    ["create", "Create an account"],
]);
switch pick {
    "find" => start("find_company"),
    "craete" => { if x { y } },
    _ => start("escalate"),
}
if pick == "finds" { say("no"); }
if "create" == pick { say("yes"); }
let other = choose("Pick", ["Yes please", "No thanks"]);
if other != "No, thanks" { say("typo"); }
let dynamic = choose("Pick", labels);
if dynamic == "anything" { say("not checked"); }
"#;

    #[test]
    fn arms_and_comparisons_on_values_no_option_gives_are_reported() {
        let problems = check("f.rhai", FLOW);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("f.rhai:9:5: \"craete\" is not a value the choose on line 3"), "{problems:#?}");
        assert!(problems[1].starts_with("f.rhai:12:12: \"finds\""), "{problems:#?}");
        assert!(problems[2].starts_with("f.rhai:15:13: \"No, thanks\""), "{problems:#?}");
        assert!(problems[2].ends_with("(it gives: No thanks, Yes please)"), "{problems:#?}");
    }
}
