//! `frontdesk bench engine|directory|email` (built with `--features bench`).
//!
//! Each bench runs on the configuration as loaded, with its own settings
//! (raised caps, mostly) applied as the last layer through the same
//! validation as any other: a bench never runs on settings an operator could
//! not reproduce, and it prints them.

use std::path::Path;

use crate::{cli::BenchCommand, config::Settings};

pub async fn run(config: Option<&Path>, command: BenchCommand) -> anyhow::Result<i32> {
    let overrides: Vec<(&str, &str)> = match &command {
        BenchCommand::Email(_) => crate::bench::email::SETTINGS.to_vec(),
        BenchCommand::Engine(args) => crate::bench::engine_settings(args).to_vec(),
        BenchCommand::Directory(_) => Vec::new(),
    };
    let settings = match Settings::load_with(config, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprint!("the bench's settings: {e}");
            return Ok(2);
        }
    };
    if !overrides.is_empty() {
        let shown: Vec<String> = overrides.iter().map(|(k, v)| format!("{}={v}", crate::config::env_name(k))).collect();
        eprintln!("bench settings (as environment): {}", shown.join(" "));
    }
    match command {
        BenchCommand::Email(args) => crate::bench::email::run(settings, args).await,
        BenchCommand::Directory(args) => crate::bench::directory::run(settings, args).await,
        BenchCommand::Engine(args) => crate::bench::engine(settings, config, args).await,
    }
    .map(|_| 0)
}
