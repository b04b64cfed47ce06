//! `frontdesk contact-request approve|decline`: an agent (or the page behind
//! the administrators' link) decides a request to be added as a contact.

use crate::{
    account::requests::{decide, Decider},
    app::App,
    cli::ContactRequestCommand,
};

pub async fn run(app: &App, command: ContactRequestCommand) -> anyhow::Result<i32> {
    let (approve, args) = match command {
        ContactRequestCommand::Approve(a) => (true, a),
        ContactRequestCommand::Decline(a) => (false, a),
    };
    let by = match (args.token, args.agent, args.number) {
        (Some(token), _, _) => Decider::Link { token },
        (None, Some(name), Some(number)) => Decider::Agent { name, number },
        _ => unreachable!("clap requires --token or --agent with a number"),
    };
    match decide(&app.store, &app.settings, by, approve, app.engine.clock().now_ms()).await {
        Ok(number) => {
            let what = if approve {
                "approved; the contact is created and welcomed by mail"
            } else {
                "declined; the requester is told by mail"
            };
            println!("{number}: {what}");
            // Deliver the mail now rather than at the next `serve`.
            app.outbox()?.run_once(app.engine.clock().now_ms()).await?;
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(1)
        }
    }
}
