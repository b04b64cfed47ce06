//! `<data>/mail/inbox/`, read like a Maildir: a delivery agent writes each
//! mail into `tmp/` and renames it into `new/`; frontdesk handles what is in
//! `new/` and moves it to `cur/` (flagged seen) once handled. A mail that
//! could not be handled stays in `new/` and is tried again.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{EmailChannel, Source};

/// Mails read into memory per round; a backlog takes several rounds.
const PER_ROUND: usize = 1000;

pub struct Inbox {
    root: PathBuf,
}

impl Inbox {
    /// Creates `tmp/`, `new/` and `cur/` under `root` if they are missing.
    pub fn open(root: &Path) -> anyhow::Result<Inbox> {
        for sub in ["tmp", "new", "cur"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(Inbox { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Handles every mail now in `new/`; returns how many were handled.
    pub async fn run_once(&self, channel: &EmailChannel, concurrency: usize) -> anyhow::Result<usize> {
        let new = self.root.join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
            .with_context(|| format!("reading {}", new.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        // Maildir names start with the delivery time: oldest first.
        files.sort();
        files.truncate(PER_ROUND);
        let mut mails = Vec::with_capacity(files.len());
        for path in files {
            match tokio::fs::read(&path).await {
                Ok(raw) => mails.push((path, raw, Source::Maildir)),
                // Gone already (another instance took it), or unreadable for now.
                Err(e) => tracing::warn!(file = %path.display(), "cannot read mail; will try again: {e}"),
            }
        }
        let mut handled = 0;
        for (path, result) in channel.handle_many(mails, concurrency).await {
            match result.map_err(anyhow::Error::from).and_then(|outcome| self.file_away(&path).map(|()| outcome)) {
                Ok(outcome) => {
                    tracing::info!(file = %path.display(), "mail {outcome}");
                    handled += 1;
                }
                Err(e) => tracing::warn!(file = %path.display(), "mail not handled yet; will try again: {e:#}"),
            }
        }
        Ok(handled)
    }

    /// Moves a handled mail to `cur/`, flagged seen.
    fn file_away(&self, path: &Path) -> anyhow::Result<()> {
        let name = path.file_name().expect("listed files have names").to_string_lossy();
        let base = name.split(":2,").next().unwrap_or(&name);
        let seen = self.root.join("cur").join(format!("{base}:2,S"));
        std::fs::rename(path, &seen).with_context(|| format!("moving {} to cur/", path.display()))
    }
}
