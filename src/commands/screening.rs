//! `frontdesk screening check|approve|refuse`: trade-embargo screening as
//! new accounts get it, and a person's decision on an account in review.

use std::path::PathBuf;

use crate::{app::App, cli::ScreeningCommand, config::Settings};

pub async fn run(settings: Settings, data: PathBuf, command: ScreeningCommand) -> anyhow::Result<i32> {
    let (approve, args) = match command {
        ScreeningCommand::Check(args) => return crate::account::screening::check(&settings, &args),
        ScreeningCommand::Approve(a) => (true, a),
        ScreeningCommand::Refuse(a) => (false, a),
    };
    let app = App::open(settings, data).await?;
    let now = app.engine.clock().now_ms();
    let decided =
        crate::account::followup::decide(&app.store, &app.settings, &args.org_id, approve, &args.agent, now).await;
    app.store.close().await;
    if decided? {
        println!(
            "{}: {}; the administrator is told by mail",
            args.org_id,
            if approve { "approved" } else { "refused" }
        );
        Ok(0)
    } else {
        eprintln!("{} is not an account in review", args.org_id);
        Ok(1)
    }
}
