//! `frontdesk bench directory`: import speed and search latency on a
//! synthetic directory (default 1,000,000 companies, about 3.5 million
//! contacts).
//!
//! Floors measured in the same run: for the import, reading and parsing the
//! same CSV files with no store work; for searches, a primary-key point
//! query through the same connection pool.

use std::{path::Path, time::Instant};

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use crate::{
    config::Settings,
    directory::{import, Directory, Found, Search},
    store::Store,
};

#[derive(Args, Debug, Clone)]
pub struct DirectoryBenchArgs {
    /// Companies in the synthetic directory.
    #[arg(long, default_value_t = 1_000_000)]
    pub companies: u64,
    /// Store to measure (default: SQLite in a temporary folder).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Searches timed per kind.
    #[arg(long, default_value_t = 5000)]
    pub lookups: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn percentile(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

/// Every `step`-th record of a CSV file (constant memory).
fn sample(path: &Path, step: usize, want: usize) -> anyhow::Result<Vec<csv::StringRecord>> {
    let mut r = csv::Reader::from_path(path)?;
    let mut out = Vec::with_capacity(want);
    for (i, rec) in r.records().enumerate() {
        if i % step.max(1) == 0 {
            out.push(rec?);
            if out.len() == want {
                break;
            }
        }
    }
    Ok(out)
}

/// The same rows as the import writes, straight from the CSV fields with no
/// checks, upserted in chunks of the import's size, a transaction per file:
/// the store's share of the import, its insert floor. Returns rows/s.
async fn insert_floor(store: &Store, dir: &Path) -> anyhow::Result<f64> {
    use crate::{
        domain::{Country, EmailAddress, OrgId, Phone},
        store::directory::{DirectoryRow as Row, Table},
    };
    let started = Instant::now();
    let mut rows = 0;
    for (name, _) in import::FILES {
        let mut reader = csv::Reader::from_path(dir.join(name))?;
        let table = match *name {
            "companies.csv" => Table::Companies,
            "contacts.csv" => Table::Contacts,
            "contracts.csv" => Table::Contracts,
            _ => Table::Licenses,
        };
        let mut import = store.begin_import(table).await?;
        let mut chunk = Vec::with_capacity(import::CHUNK);
        let mut records = reader.records();
        loop {
            let record = records.next().transpose()?;
            if let Some(r) = &record {
                let f = |i: usize| r.get(i).unwrap_or_default().to_string();
                chunk.push(match *name {
                    "companies.csv" => Row::Company {
                        org_id: OrgId::unchecked(f(0)),
                        name: f(1),
                        street: f(2),
                        city: f(3),
                        region: f(4),
                        postal_code: f(5),
                        country: Country::unchecked(f(6)),
                        phone: Phone::unchecked(f(7)),
                    },
                    "contacts.csv" => Row::Contact {
                        org_id: OrgId::unchecked(f(0)),
                        username: f(1),
                        first: f(2),
                        last: f(3),
                        email: EmailAddress::unchecked(f(4)),
                        phone: Some(Phone::unchecked(f(5))),
                        role: f(6),
                    },
                    "contracts.csv" => Row::Contract { number: f(0), org_id: OrgId::unchecked(f(1)), admin: f(2) },
                    _ => Row::License {
                        serial: f(0),
                        org_id: OrgId::unchecked(f(1)),
                        product: f(2),
                        machine_code: Some(f(3)).filter(|m| !m.is_empty()),
                    },
                });
            }
            if chunk.len() == import::CHUNK || (record.is_none() && !chunk.is_empty()) {
                rows += import.upsert(&chunk, 1).await?;
                chunk.clear();
            }
            if record.is_none() {
                break;
            }
        }
        import.commit().await?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Reads and parses every file with no store work: the import's floor.
fn parse_floor(dir: &Path) -> anyhow::Result<u64> {
    let mut rows = 0;
    for (name, _) in import::FILES {
        let mut r = csv::Reader::from_path(dir.join(name))?;
        let mut rec = csv::StringRecord::new();
        while r.read_record(&mut rec)? {
            rows += 1;
            std::hint::black_box(&rec);
        }
    }
    Ok(rows)
}

async fn time_searches(d: &Directory, searches: &[Search]) -> anyhow::Result<Vec<u64>> {
    let mut us = Vec::with_capacity(searches.len());
    for s in searches {
        let t = Instant::now();
        let found = d.search(s).await?;
        us.push(t.elapsed().as_micros() as u64);
        anyhow::ensure!(matches!(found, Found::Company { .. }), "a sampled identifier was not found: {s:?}");
    }
    us.sort_unstable();
    Ok(us)
}

pub async fn run(settings: Settings, args: DirectoryBenchArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for meaningful figures");
    }
    let tmp = tempfile::tempdir()?;
    let csv_dir = tmp.path().join("csv");
    let say = |m: &str| {
        if !args.json {
            eprintln!("{m}");
        }
    };
    say(&format!("generating {} companies...", args.companies));
    let out = csv_dir.clone();
    let n = args.companies;
    let generated = tokio::task::spawn_blocking(move || crate::directory::demo::generate(&out, n, 1, false)).await??;

    let dir = csv_dir.clone();
    let t = Instant::now();
    let parsed = tokio::task::spawn_blocking(move || parse_floor(&dir)).await??;
    let parse_rows_per_sec = parsed as f64 / t.elapsed().as_secs_f64();

    let url = args.database_url.clone().unwrap_or_else(|| Store::sqlite_url(tmp.path()));
    let store = Store::open_with(&url, settings.database.store_options()).await.context("opening the bench store")?;
    say(&format!("importing {} rows into {}...", generated.rows(), store.backend()));
    let report = import::import_dir(&store, &csv_dir, &Default::default(), 1).await?;
    anyhow::ensure!(
        !report.rejected(),
        "the synthetic directory did not import cleanly: {:?}",
        report.files.iter().flat_map(|f| f.bad.iter().take(3)).collect::<Vec<_>>()
    );
    let import_rows_per_sec = report.rows() as f64 / report.seconds;
    say("the insert floor: the same rows with no checks...");
    let insert_rows_per_sec = match &args.database_url {
        // A fresh file, as the import had.
        None => {
            let floor =
                Store::open_with(&Store::sqlite_url(&tmp.path().join("floor")), settings.database.store_options())
                    .await?;
            let rate = insert_floor(&floor, &csv_dir).await?;
            floor.close().await;
            rate
        }
        // The same database, emptied (after the searches, below).
        Some(_) => f64::NAN,
    };

    // Identifiers to search for, spread over the whole directory.
    let k = args.lookups;
    let contacts = sample(&csv_dir.join("contacts.csv"), (generated.contacts as usize / k).max(1), k)?;
    let contracts = sample(&csv_dir.join("contracts.csv"), (generated.contracts as usize / k).max(1), k)?;
    let licenses = sample(&csv_dir.join("licenses.csv"), (generated.licenses as usize / k).max(1), k)?;
    // Contract searches need the administrator's last name.
    let last_names: std::collections::HashMap<String, String> = {
        let wanted: std::collections::HashSet<&str> = contracts.iter().map(|c| &c[2]).collect();
        let mut r = csv::Reader::from_path(csv_dir.join("contacts.csv"))?;
        let mut m = std::collections::HashMap::new();
        for rec in r.records() {
            let rec = rec?;
            if wanted.contains(&rec[1]) {
                m.insert(rec[1].to_string(), rec[3].to_string());
            }
        }
        m
    };
    let d = Directory::new(store.clone());
    let cases: Vec<(&str, Vec<Search>)> = vec![
        ("username", contacts.iter().map(|c| Search::Username { value: c[1].to_uppercase() }).collect()),
        ("email", contacts.iter().map(|c| Search::Email { value: c[4].to_string() }).collect()),
        (
            "contract",
            contracts
                .iter()
                .filter_map(|c| {
                    last_names
                        .get(&c[2])
                        .map(|l| Search::Contract { number: c[0].to_string(), admin_last_name: l.clone() })
                })
                .collect(),
        ),
        (
            "serial",
            licenses.iter().filter(|l| &l[2] != "XP").map(|l| Search::Serial { value: l[0].to_string() }).collect(),
        ),
        (
            "machine_code",
            licenses
                .iter()
                .filter(|l| &l[2] == "XP")
                .map(|l| Search::MachineCode { value: l[3].to_string() })
                .collect(),
        ),
    ];
    let mut kinds = serde_json::Map::new();
    let mut worst: f64 = 0.0;
    for (kind, searches) in &cases {
        let us = time_searches(&d, searches).await?;
        let (p50, p99) = (percentile(&us, 0.5), percentile(&us, 0.99));
        worst = worst.max(p99);
        kinds.insert(kind.to_string(), json!({ "n": us.len(), "p50_ms": p50, "p99_ms": p99 }));
    }
    // The floor: a primary-key point query through the same pool.
    let mut floor_us = Vec::with_capacity(k);
    for c in &contacts {
        let t = Instant::now();
        let exists = store.company_exists(&c[0]).await?;
        floor_us.push(t.elapsed().as_micros() as u64);
        anyhow::ensure!(exists, "company {} is missing", &c[0]);
    }
    floor_us.sort_unstable();
    let insert_rows_per_sec = if insert_rows_per_sec.is_nan() {
        store.clear_directory().await?;
        insert_floor(&store, &csv_dir).await?
    } else {
        insert_rows_per_sec
    };

    let out = json!({
        "backend": store.backend(),
        "companies": generated.companies,
        "contacts": generated.contacts,
        "rows": report.rows(),
        "import_rows_per_sec": import_rows_per_sec.round(),
        "parse_floor_rows_per_sec": parse_rows_per_sec.round(),
        "insert_floor_rows_per_sec": insert_rows_per_sec.round(),
        "import_overhead_ratio": (insert_rows_per_sec / import_rows_per_sec * 100.0).round() / 100.0,
        "peak_rss_mb": super::peak_rss_mb(),
        "lookup_p99_ms": worst,
        "point_query_floor_p50_ms": percentile(&floor_us, 0.5),
        "point_query_floor_p99_ms": percentile(&floor_us, 0.99),
        "searches": kinds,
    });
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    store.close().await;
    Ok(())
}
