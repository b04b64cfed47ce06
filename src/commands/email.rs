//! `frontdesk email ingest FILE…`: raw mails handled as if they had arrived.

use crate::{app::App, cli::EmailCommand};

pub async fn run(app: &App, command: EmailCommand) -> anyhow::Result<i32> {
    match command {
        EmailCommand::Ingest { files } => crate::channels::email::ingest::run(app, &files).await,
    }
}
