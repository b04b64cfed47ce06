//! `<data>/mail/inbox/`, read like a Maildir: a delivery agent writes each
//! mail into `tmp/` and renames it into `new/`; frontdesk handles what is in
//! `new/` and moves it to `cur/` (flagged seen) once handled. A mail that
//! could not be handled stays in `new/` and is tried again.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures::StreamExt as _;

use super::{EmailChannel, Outcome, Source};

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
        let handled = futures::stream::iter(files)
            .map(|path| async move {
                let result = self.handle_file(channel, &path).await;
                if let Err(e) = &result {
                    tracing::warn!(file = %path.display(), "mail not handled yet; will try again: {e:#}");
                }
                result.is_ok()
            })
            .buffer_unordered(concurrency.max(1))
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        Ok(handled)
    }

    async fn handle_file(&self, channel: &EmailChannel, path: &Path) -> anyhow::Result<Outcome> {
        let raw = tokio::fs::read(path).await.with_context(|| format!("reading {}", path.display()))?;
        let outcome = channel.handle(&raw, &Source::Maildir).await?;
        tracing::info!(file = %path.display(), "mail {outcome}");
        let name = path.file_name().expect("listed files have names").to_string_lossy();
        let base = name.split(":2,").next().unwrap_or(&name);
        let seen = self.root.join("cur").join(format!("{base}:2,S"));
        tokio::fs::rename(path, &seen).await.with_context(|| format!("moving {} to cur/", path.display()))?;
        Ok(outcome)
    }
}
