//! `frontdesk flows check|test`: the flows folder checked against the host
//! API, and its transcripts run through the real engine.

use std::{path::PathBuf, sync::Arc};

use crate::{cli::FlowsCommand, config::Settings};

pub async fn run(settings: Settings, command: FlowsCommand) -> anyhow::Result<i32> {
    match command {
        FlowsCommand::Check { dir } => check(settings, dir),
        FlowsCommand::Test { path } => test(settings, path).await,
    }
}

fn check(settings: Settings, dir: Option<PathBuf>) -> anyhow::Result<i32> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(&settings.engine.flows_dir));
    let engine = crate::engine::Engine::script_engine_for(&settings, &crate::app::declared_effects());
    let problems = crate::flowcheck::check_dir(&engine, &dir, &settings.engine.router_flow)?;
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        println!("flows ok: {}", dir.display());
        Ok(0)
    } else {
        eprintln!("{} problem(s)", problems.len());
        Ok(1)
    }
}

async fn test(settings: Settings, path: Option<PathBuf>) -> anyhow::Result<i32> {
    let path = path.unwrap_or_else(|| PathBuf::from(&settings.engine.flows_dir).join("tests"));
    let files = crate::transcript::find(&path)?;
    if files.is_empty() {
        eprintln!("no transcripts (*.chat) found at {}", path.display());
        return Ok(1);
    }
    let settings = Arc::new(settings);
    let mut failed = 0;
    for f in &files {
        match crate::transcript::run_file(f, settings.clone()).await {
            Ok(()) => println!("ok      {}", f.display()),
            Err(e) => {
                failed += 1;
                println!("FAILED  {}\n{e}", f.display());
            }
        }
    }
    println!("transcripts: {} passed, {failed} failed", files.len() - failed);
    Ok(if failed == 0 { 0 } else { 1 })
}
