//! `frontdesk flows check|test`: the flows folder checked against the host
//! API, and its transcripts run through the real engine.

use std::{path::PathBuf, sync::Arc};

use crate::{cli::FlowsCommand, config::Settings, engine::flows::FlowsSource};

pub async fn run(settings: Settings, command: FlowsCommand) -> anyhow::Result<i32> {
    match command {
        FlowsCommand::Check { dir } => check(settings, dir),
        FlowsCommand::Test { path } => test(settings, path).await,
        FlowsCommand::Eject { dir } => eject(dir),
    }
}

fn check(settings: Settings, dir: Option<PathBuf>) -> anyhow::Result<i32> {
    let source = match dir {
        Some(dir) => FlowsSource::Folder(dir),
        None => FlowsSource::of(&settings.engine.flows_dir),
    };
    let engine = crate::engine::Engine::script_engine_for(&settings, &crate::app::declared_effects());
    let problems = crate::flowcheck::check(&engine, &source, &settings.engine.router_flow)?;
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        println!("flows ok: {source}");
        Ok(0)
    } else {
        eprintln!("{} problem(s)", problems.len());
        Ok(1)
    }
}

/// Writes the built-in flows and mail templates out, to edit.
fn eject(dir: PathBuf) -> anyhow::Result<i32> {
    let (flows, templates) = crate::builtin::eject(&dir)?;
    println!("wrote {} and {}", flows.display(), templates.display());
    println!("to use them, set in your configuration file:");
    println!(
        "  [engine]\n  flows_dir = \"{}\"\n  [mail]\n  templates_dir = \"{}\"",
        flows.display(),
        templates.display()
    );
    Ok(0)
}

async fn test(settings: Settings, path: Option<PathBuf>) -> anyhow::Result<i32> {
    let path = match path {
        Some(path) => path,
        None => match FlowsSource::of(&settings.engine.flows_dir) {
            FlowsSource::Folder(dir) => dir.join("tests"),
            // The built-in flows' transcripts live in the source tree.
            FlowsSource::BuiltIn => PathBuf::from("flows/tests"),
        },
    };
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
