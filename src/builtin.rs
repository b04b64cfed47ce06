//! The default flows and mail templates, built into the binary, so that
//! `frontdesk` runs from any folder. A configured folder
//! (`engine.flows_dir`, `mail.templates_dir`) replaces the built-in set;
//! `frontdesk flows eject DIR` writes the set out as a start for one.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use include_dir::{include_dir, Dir};

/// `flows/` of the source tree: the flows, and their transcript tests in
/// `tests/`.
pub static FLOWS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/flows");

/// `templates/mail/` of the source tree.
pub static MAIL_TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/mail");

/// A built-in flow's source by name (`router` → `router.rhai`).
pub fn flow(name: &str) -> Option<&'static str> {
    FLOWS.get_file(format!("{name}.rhai")).and_then(|f| f.contents_utf8())
}

/// The built-in flows, as `(name, source)`, by name.
pub fn flows() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = FLOWS
        .files()
        .filter_map(|f| {
            let name = f.path().to_str()?.strip_suffix(".rhai")?;
            Some((name, f.contents_utf8()?))
        })
        .collect();
    all.sort();
    all
}

/// A built-in mail template by file name (`reply.subject.txt`).
pub fn mail_template(file: &str) -> Option<&'static str> {
    MAIL_TEMPLATES.get_file(file).and_then(|f| f.contents_utf8())
}

/// Writes the built-in flows (with their tests) to `dir/flows` and the mail
/// templates to `dir/templates/mail`; refuses to overwrite a file. Returns
/// the folders written.
pub fn eject(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (flows, templates) = (dir.join("flows"), dir.join("templates").join("mail"));
    for (folder, set) in [(&flows, &FLOWS), (&templates, &MAIL_TEMPLATES)] {
        write_dir(folder, set)?;
    }
    Ok((flows, templates))
}

fn write_dir(target: &Path, set: &Dir<'_>) -> anyhow::Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    for file in set.files() {
        let path = target.join(file.path().file_name().context("a built-in file has a name")?);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("writing {} (an existing file is never overwritten)", path.display()))?;
        std::io::Write::write_all(&mut out, file.contents()).with_context(|| format!("writing {}", path.display()))?;
    }
    for sub in set.dirs() {
        write_dir(&target.join(sub.path().file_name().context("a built-in folder has a name")?), sub)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_set_is_the_source_tree_s() {
        let router = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/flows/router.rhai")).unwrap();
        assert_eq!(super::flow("router"), Some(router.as_str()));
        assert!(super::flows().iter().any(|(name, _)| *name == "recover_login"));
        assert!(super::flows().iter().all(|(name, _)| !name.contains('/')), "tests are not flows");
        assert!(super::mail_template("reply.subject.txt").is_some());
    }

    #[test]
    fn eject_writes_everything_once_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let (flows, templates) = super::eject(dir.path()).unwrap();
        assert!(flows.join("router.rhai").is_file() && flows.join("tests").join("branches.chat").is_file());
        assert!(templates.join("login_info.html").is_file());
        let again = super::eject(dir.path()).unwrap_err();
        assert!(format!("{again:#}").contains("never overwritten"), "{again:#}");
    }
}
