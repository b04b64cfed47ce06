//! What each command does, one file per command; [`crate::cli`] says what
//! they take. Each opens what it needs (settings, store, engine) and returns
//! the process's exit code.

mod agent;
#[cfg(feature = "bench")]
mod bench;
mod chat;
mod contact_request;
mod demo_data;
mod email;
mod flows;
mod import;
mod screening;
mod serve;

use std::path::PathBuf;

use crate::{
    app::App,
    cli::{Cli, Command},
    config::Settings,
};

/// Runs the command line; returns the exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{e}");
            return Ok(2);
        }
    };
    let data = cli.data;
    match cli.command {
        Command::Chat(args) => chat::run(App::open(settings, data).await?, args).await,
        Command::Serve => {
            // Bound first: with port 0, the links of the first mails need
            // the port it got.
            let listener = crate::http::bind(&settings.http).await?;
            settings.served_at(listener.local_addr()?);
            serve::run(App::open(settings, data).await?, listener).await.map(|_| 0)
        }
        Command::Flows(command) => flows::run(settings, command).await,
        Command::Screening(command) => screening::run(settings, data, command).await,
        Command::Agent(command) => with_app(settings, data, async |app: &App| agent::run(app, command).await).await,
        Command::ContactRequest(command) => {
            with_app(settings, data, async |app: &App| contact_request::run(app, command).await).await
        }
        Command::DemoData(args) => demo_data::run(data, args).await,
        Command::Import(args) => import::run(App::open(settings, data).await?, args).await,
        Command::Email(command) => with_app(settings, data, async |app: &App| email::run(app, command).await).await,
        #[cfg(feature = "bench")]
        Command::Bench(command) => bench::run(cli.config.as_deref(), command).await,
    }
}

/// Runs `command` on an opened app, and closes the store whatever it did.
async fn with_app<F>(settings: Settings, data: PathBuf, command: F) -> anyhow::Result<i32>
where
    F: AsyncFnOnce(&App) -> anyhow::Result<i32>,
{
    let app = App::open(settings, data).await?;
    let code = command(&app).await;
    app.store.close().await;
    code
}
