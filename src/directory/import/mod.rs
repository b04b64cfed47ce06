//! `frontdesk import DIR`: the directory from CSV files.
//!
//! Streaming: a reader thread parses records into chunks of [`CHUNK`] rows
//! and checks each row's fields and the company it names (`rows`); each
//! chunk is then checked against the store and the rest of the import
//! (`references`: addresses used by someone else, user names twice, a
//! contract's administrator) and upserted in one multi-row statement, so
//! memory stays bounded however long the file (the companies' countries and
//! a hash per contact key are kept for the file). Each file is one
//! transaction: a file with bad rows changes nothing unless bad rows are to be
//! skipped. Re-importing updates rows by their key; it never duplicates.

mod companies;
mod references;
mod rows;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::{bail, Context as _};
use rows::Kind;

use super::records::Records;
use crate::store::{
    directory::{DirectoryRow as Row, Import},
    Store,
};

/// Rows per chunk (and per upsert statement). Measured on 1.5 M rows: 500
/// rows gave ~46,000 rows/s, 2,000 rows ~58,700. The ceiling is SQLite's
/// 32,766 bound values: a contact row binds 12, so at most 2,730 rows.
pub const CHUNK: usize = 2000;

/// The files an import reads, in the order references need them.
pub const FILES: &[(&str, &[&str])] = &[
    ("companies.csv", &["org_id", "name", "street", "city", "region", "postal_code", "country", "phone"]),
    ("contacts.csv", &["org_id", "username", "first_name", "last_name", "email", "phone", "role"]),
    ("contracts.csv", &["contract_number", "org_id", "admin_username"]),
    ("licenses.csv", &["serial_number", "org_id", "product", "machine_code"]),
];

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub skip_bad_rows: bool,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
}

#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub file: PathBuf,
    pub rows: u64,
    pub imported: u64,
    /// `file:line: reason`, one per bad row.
    pub bad: Vec<String>,
    /// Whether the file's rows were kept.
    pub committed: bool,
    /// Why the file could not be read to its end (it then changes nothing,
    /// whatever `--skip-bad-rows` says).
    pub failed: Option<String>,
    /// How long the file took.
    pub seconds: f64,
}

#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub files: Vec<FileReport>,
    pub seconds: f64,
}

impl ImportReport {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn imported(&self) -> u64 {
        self.files.iter().filter(|f| f.committed).map(|f| f.imported).sum()
    }

    pub fn bad_rows(&self) -> usize {
        self.files.iter().map(|f| f.bad.len()).sum()
    }

    /// Whether any file was rolled back because of bad rows.
    pub fn rejected(&self) -> bool {
        self.files.iter().any(|f| !f.committed)
    }
}

/// A record's line and its field-checked row (or why not).
type Parsed = (u64, Result<Row, String>);

/// What the reader thread hands the writer.
enum Read {
    /// Records, and how far into the file they reach (bytes).
    Chunk(Vec<Parsed>, u64),
    /// A record that could not be read, as `file:line: reason`.
    Bad(String),
    /// The file could not be read to its end: it changes nothing.
    Failed(String),
    /// The whole file was read.
    End,
}

/// Imports every known file found in `dir`.
pub async fn import_dir(
    store: &Store,
    dir: &Path,
    options: &ImportOptions,
    now_ms: i64,
) -> anyhow::Result<ImportReport> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let started = Instant::now();
    let mut report = ImportReport::default();
    let mut found = 0;
    for (name, header) in FILES {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        found += 1;
        let file = import_file(store, &path, name, header, options, now_ms).await?;
        let stop = !file.committed;
        report.files.push(file);
        if stop {
            // Later files refer to this one's rows; importing them against a
            // rolled-back file would only multiply the errors.
            break;
        }
    }
    if found == 0 {
        bail!("{} holds none of {}", dir.display(), FILES.iter().map(|f| f.0).collect::<Vec<_>>().join(", "));
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn import_file(
    store: &Store,
    path: &Path,
    name: &str,
    header: &[&str],
    options: &ImportOptions,
    now_ms: i64,
) -> anyhow::Result<FileReport> {
    let started = Instant::now();
    let display = path.display().to_string();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let file = std::fs::File::open(path).with_context(|| format!("opening {display}"))?;
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    let mut report = import_from(store, input, &display, name, header, size, options, now_ms).await?;
    report.file = path.to_path_buf();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// [`import_file`] from any reader (`display` names it in messages).
#[allow(clippy::too_many_arguments)]
async fn import_from(
    store: &Store,
    input: impl std::io::BufRead + Send + 'static,
    display: &str,
    name: &str,
    header: &[&str],
    size: u64,
    options: &ImportOptions,
    now_ms: i64,
) -> anyhow::Result<FileReport> {
    let display = display.to_string();
    let mut records = Records::new(input);
    let got: Vec<String> = match records.next_record().with_context(|| format!("{display}:1: reading the header"))? {
        Some((_, Ok(record))) => record.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect(),
        Some((line, Err(why))) => bail!("{display}:{line}: the header: {why}"),
        None => Vec::new(),
    };
    if got != header {
        bail!("{display}:1: the header must be exactly `{}` (found `{}`)", header.join(","), got.join(","));
    }

    // What the file's rows may refer to, read once: the companies (with the
    // country a contact's phone is read in), and whether any contact is on
    // record. The reader thread checks each row against them.
    let kind = Kind::from_file(name);
    let mut import = store.begin_import(kind.table()).await?;
    let companies = Arc::new(match kind {
        Kind::Companies => rows::Countries::new(),
        _ => {
            let mut known = rows::Countries::new();
            import.each_company_country(|org_id, country| known.insert(org_id, country)).await?;
            known
        }
    });
    let seen = references::Seen::new(kind == Kind::Contacts && import.has_contacts().await?);

    // The reader thread reads and checks fields (the CPU-heavy part: phone
    // numbers, addresses) while the store writes the previous chunk, in
    // chunks, so memory stays bounded.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Read>(4);
    let file_for_errors = display.clone();
    let expected = header.len();
    std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        loop {
            let (line, record) = match records.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.blocking_send(Read::Failed(format!(
                        "{file_for_errors}: could not be read to its end (after byte {}): {e}",
                        records.bytes
                    )));
                    return;
                }
            };
            let bad = match record {
                Ok(record) if record.len() == expected => {
                    chunk.push((line, rows::parse(kind, &record, &companies)));
                    None
                }
                Ok(record) => {
                    Some(format!("{file_for_errors}:{line}: expected {expected} fields, found {}", record.len()))
                }
                Err(why) => Some(format!("{file_for_errors}:{line}: {why}")),
            };
            if let Some(bad) = bad {
                if tx.blocking_send(Read::Bad(bad)).is_err() {
                    return;
                }
            }
            if chunk.len() == CHUNK {
                let chunk = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                if tx.blocking_send(Read::Chunk(chunk, records.bytes)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.blocking_send(Read::Chunk(chunk, records.bytes));
        let _ = tx.blocking_send(Read::End);
    });

    let bar = if options.progress {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:16} [{bar:40}] {bytes}/{total_bytes} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(name.to_string());
        Some(bar)
    } else {
        None
    };

    let mut report = FileReport { file: PathBuf::from(&display), ..Default::default() };
    let file = FileWrite { kind, file: &display, options, now: now_ms, bar: bar.as_ref() };
    let result = file.write(import, seen, &mut rx, &mut report).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result?;
    Ok(report)
}

/// How one file is written.
struct FileWrite<'a> {
    kind: Kind,
    file: &'a str,
    options: &'a ImportOptions,
    now: i64,
    bar: Option<&'a indicatif::ProgressBar>,
}

impl FileWrite<'_> {
    /// Writes what the reader sends, chunk by chunk, in the import's one
    /// transaction: kept if the file was read to its end and is clean (or bad
    /// rows are to be skipped), rolled back otherwise.
    async fn write(
        &self,
        mut import: Import,
        mut seen: references::Seen,
        rx: &mut tokio::sync::mpsc::Receiver<Read>,
        report: &mut FileReport,
    ) -> anyhow::Result<()> {
        let file = self.file;
        let keep_going = |report: &FileReport| report.bad.is_empty() || self.options.skip_bad_rows;
        let mut read_to_end = false;
        while let Some(msg) = rx.recv().await {
            let (parsed, pos) = match msg {
                Read::Chunk(parsed, pos) => (parsed, pos),
                Read::Bad(bad) => {
                    report.rows += 1;
                    report.bad.push(bad);
                    continue;
                }
                Read::Failed(why) => {
                    report.failed = Some(why);
                    break;
                }
                Read::End => {
                    read_to_end = true;
                    break;
                }
            };
            report.rows += parsed.len() as u64;
            // Problems of this chunk, reported in line order.
            let mut bad: Vec<(u64, String)> = Vec::new();
            let mut rows = Vec::with_capacity(parsed.len());
            for (line, result) in parsed {
                match result {
                    Ok(row) => rows.push((line, row)),
                    Err(why) => bad.push((line, format!("{file}:{line}: {why}"))),
                }
            }
            let checked = references::check(&mut import, self.kind, rows, file, &mut seen, &mut bad).await?;
            bad.sort_by_key(|(line, _)| *line);
            report.bad.extend(bad.into_iter().map(|(_, msg)| msg));
            if !checked.is_empty() && keep_going(report) {
                let written =
                    import.upsert(&checked, self.now).await.with_context(|| format!("{file}: writing rows"))?;
                report.imported += written;
            }
            if let Some(bar) = self.bar {
                bar.set_position(pos);
            }
        }
        if !read_to_end && report.failed.is_none() {
            report.failed = Some(format!("{file}: the reader stopped before the end of the file"));
        }
        if report.failed.is_none() && keep_going(report) {
            import.commit().await?;
            report.committed = true;
        } else {
            import.rollback().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    /// A file that breaks after `good` bytes, as a failing disk would.
    struct Breaks {
        data: std::io::Cursor<Vec<u8>>,
        good: u64,
    }

    impl std::io::Read for Breaks {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.data.position() >= self.good {
                return Err(std::io::Error::other("input/output error"));
            }
            let room = (self.good - self.data.position()) as usize;
            let n = buf.len().min(room);
            self.data.read(&mut buf[..n])
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_that_cannot_be_read_to_its_end_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&crate::store::Store::sqlite_url(dir.path()), 2).await.unwrap();
        let mut csv = String::from("org_id,name,street,city,region,postal_code,country,phone\n");
        for i in 0..5000 {
            csv.push_str(&format!("ORG-{i},Company {i},Hauptstrasse 1,Berlin,,10115,DE,030 901820\n"));
        }
        let good = csv.len() as u64 * 3 / 4;
        let input = std::io::BufReader::new(Breaks { data: std::io::Cursor::new(csv.into_bytes()), good });
        let options = super::ImportOptions { skip_bad_rows: true, progress: false };
        let (_, header) = super::FILES[0];
        let report =
            super::import_from(&store, input, "companies.csv", "companies.csv", header, 0, &options, 1).await.unwrap();
        assert!(!report.committed, "{report:?}");
        assert!(report.failed.as_deref().unwrap_or_default().contains("could not be read to its end"), "{report:?}");
        let companies = crate::directory::Directory::new(store.clone()).company("ORG-1").await.unwrap();
        assert!(companies.is_none(), "nothing of the file was kept");
        store.close().await;
    }
}
