//! `frontdesk bench engine|directory|email` (built with `--features bench`).

use std::path::PathBuf;

use crate::{cli::BenchCommand, config::Settings};

pub async fn run(settings: Settings, data: PathBuf, command: BenchCommand) -> anyhow::Result<i32> {
    match command {
        BenchCommand::Email(args) => crate::bench::email::run(settings, args).await,
        BenchCommand::Directory(args) => crate::bench::directory::run(settings, args).await,
        BenchCommand::Engine(args) => crate::bench::engine(settings, data, args).await,
    }
    .map(|_| 0)
}
