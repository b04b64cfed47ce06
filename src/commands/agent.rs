//! `frontdesk agent …`: the agent desk from a shell, on any channel. Replies
//! to Discord members go out from the running `serve` (its redelivery
//! sweep); e-mail flows are mailed at once.

use crate::{
    agent::{CustomerRef, Desk, DeskError, LookupBy, Surface},
    app::App,
    cli::{AgentCommand, CustomerArgs},
    engine::TurnReply,
};

/// Runs one agent command; returns the exit code.
pub async fn run(app: &App, command: AgentCommand) -> anyhow::Result<i32> {
    let desk = Desk::new(app.engine.clone(), app.settings.clone(), Surface::Shell);
    Ok(act(app, &desk, command).await.unwrap_or_else(|e| {
        // The agent's own mistakes are only told; the rest is also logged.
        if matches!(e, DeskError::Engine(_) | DeskError::Store(_)) {
            tracing::error!("agent command failed: {e}");
        }
        eprintln!("error: {}", e.agent_message(&app.settings));
        1
    }))
}

async fn act(app: &App, desk: &Desk, command: AgentCommand) -> Result<i32, DeskError> {
    match command {
        AgentCommand::Start { flow, customer, agent, channel } => {
            start(app, desk, &flow, &customer, &agent, &channel).await
        }
        AgentCommand::Lookup { by, value, last_name, agent } => {
            let by = LookupBy::parse(&by).expect("clap allows only known kinds");
            println!("{}", desk.lookup(&agent, by, &value, last_name.as_deref()).await?);
            Ok(0)
        }
        AgentCommand::Transcript(who) => {
            match desk.transcript(&who.agent, &customer(&who)?).await? {
                Some(t) => println!("{}", t.render(usize::MAX)),
                None => println!("{} has no conversation on {}.", who.customer, who.channel),
            }
            Ok(0)
        }
        AgentCommand::TakeOver(who) => report(&who, desk.take_over(&who.agent, &customer(&who)?).await?),
        AgentCommand::Say { customer: who, text } => report(&who, desk.say(&who.agent, &customer(&who)?, &text).await?),
        AgentCommand::HandBack(who) => report(&who, desk.hand_back(&who.agent, &customer(&who)?).await?),
    }
}

fn customer(who: &CustomerArgs) -> Result<CustomerRef, DeskError> {
    Ok(CustomerRef::on(&who.channel, &who.customer)?)
}

/// What came of taking over, saying or handing back.
fn report(who: &CustomerArgs, reply: TurnReply) -> Result<i32, DeskError> {
    if reply.conversation_id.is_none() {
        println!("{} has no conversation with the support team on {}.", who.customer, who.channel);
        return Ok(1);
    }
    println!("done; {} will see:", who.customer);
    show(&reply);
    Ok(0)
}

fn show(reply: &TurnReply) {
    for d in &reply.messages {
        for line in crate::channels::terminal::render(&d.message) {
            println!("  | {line}");
        }
    }
}

async fn start(
    app: &App,
    desk: &Desk,
    flow: &str,
    customer: &str,
    agent: &str,
    channel: &str,
) -> Result<i32, DeskError> {
    let who = CustomerRef::on(channel, customer)?;
    let started = desk.start(agent, &who, flow).await?;
    if started.by_mail {
        // The first mail goes out now rather than at the next `serve`.
        app.store.flush().await;
        if let Err(e) = async { app.outbox()?.run_once(app.engine.clock().now_ms()).await }.await {
            tracing::warn!("the first mail stays queued for `serve`: {e:#}");
        }
    }
    println!("started {flow} for {customer} on {channel}; they will see:");
    show(&started.reply);
    Ok(0)
}
