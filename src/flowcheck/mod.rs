//! `frontdesk flows check`: compile every flow, check that every
//! `start("name")` names a flow that exists and that no branch on a
//! `choose` names a value none of its options gives ([`choices`]), reporting
//! `file:line:col: error`.

mod choices;

use std::path::Path;

use crate::engine::flows;

/// The string literals `pattern`'s first group captures, outside `//`
/// comment lines, as `(line, column, literal)`.
fn literals<'s>(source: &'s str, pattern: &'s regex::Regex) -> impl Iterator<Item = (usize, usize, &'s str)> {
    source.lines().enumerate().filter(|(_, line)| !line.trim_start().starts_with("//")).flat_map(move |(n, line)| {
        pattern.captures_iter(line).map(move |cap| {
            let m = cap.get(1).expect("group 1");
            (n + 1, m.start(), m.as_str())
        })
    })
}

/// Comparisons of an effect result's `reason` with a name no effect gives
/// ([`crate::account::Refusal`]): a branch that can never run.
fn reasons(file: &str, source: &str) -> Vec<String> {
    let compare = regex::Regex::new(r#"\.reason\s*[!=]=\s*"([^"]*)""#).expect("valid regex");
    let known: Vec<&str> = crate::account::Refusal::ALL.iter().map(|r| r.name()).collect();
    literals(source, &compare)
        .filter(|(_, _, name)| !known.contains(name))
        .map(|(line, col, name)| {
            format!("{file}:{line}:{col}: {name:?} is not a reason any effect gives ({})", known.join(", "))
        })
        .collect()
}

/// Returns one `file:line:col: message` line per problem of the flows of a
/// folder.
pub fn check_dir(engine: &rhai::Engine, dir: &Path, router: &str) -> std::io::Result<Vec<String>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        files.push((path.display().to_string(), stem, std::fs::read(&path)?));
    }
    let mut problems = Vec::new();
    if !dir.join(format!("{router}.rhai")).is_file() {
        problems.push(format!("{}: the router flow {router}.rhai is missing", dir.display()));
    }
    problems.extend(check_files(engine, &files));
    Ok(problems)
}

/// [`check_dir`] for wherever `source` keeps its flows.
pub fn check(engine: &rhai::Engine, source: &flows::FlowsSource, router: &str) -> std::io::Result<Vec<String>> {
    match source {
        flows::FlowsSource::Folder(dir) => check_dir(engine, dir, router),
        flows::FlowsSource::BuiltIn => {
            let files: Vec<_> = crate::builtin::flows()
                .into_iter()
                .map(|(name, text)| (format!("{name}.rhai (built in)"), name.to_string(), text.as_bytes().to_vec()))
                .collect();
            let mut problems = check_files(engine, &files);
            if crate::builtin::flow(router).is_none() {
                problems.push(format!("the built-in flows have no router flow {router}"));
            }
            Ok(problems)
        }
    }
}

/// Checks flows given as `(file as named in messages, flow name, bytes)`.
fn check_files(engine: &rhai::Engine, files: &[(String, String, Vec<u8>)]) -> Vec<String> {
    let mut problems = Vec::new();
    let exists = |name: &str| files.iter().any(|(_, stem, _)| stem == name);
    let start_call = regex::Regex::new(r#"\bstart\s*\(\s*"([^"]*)""#).expect("valid regex");
    for (file, stem, bytes) in files {
        if !flows::valid_name(stem) {
            problems.push(format!("{file}:1:1: flow file names must be lower-case letters, digits and _"));
        }
        let Ok(source) = std::str::from_utf8(bytes) else {
            problems.push(format!("{file}:1:1: not valid UTF-8"));
            continue;
        };
        if let Err(e) = flows::compile(engine, file, source) {
            problems.push(e.to_string());
        }
        problems.extend(choices::check(file, source));
        problems.extend(reasons(file, source));
        for (line, col, name) in literals(source, &start_call) {
            if !flows::valid_name(name) || !exists(name) {
                problems.push(format!("{file}:{line}:{col}: start({name:?}): there is no flow of that name"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reason_no_effect_gives_is_reported() {
        let source = "if found.reason == \"rate_limited\" { x(); }\n// found.reason == \"old\"\nif r.reason != \"rate_limit\" {}\n";
        let problems = super::reasons("f.rhai", source);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("f.rhai:3:16: \"rate_limit\" is not a reason any effect gives"),
            "{problems:?}"
        );
    }
}
