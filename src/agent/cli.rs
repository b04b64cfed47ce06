//! `frontdesk agent …`: what agents do from a shell, on any channel that
//! keys conversations by who the customer is (terminal, Discord). Replies
//! to Discord members go out from the running `serve` (its redelivery
//! sweep); e-mail flows are mailed at once.

use serde_json::json;

use super::{lookup, transcript, LookupBy};
use crate::{
    app::App,
    cli::{AgentCommand, CustomerArgs},
    engine::{EngineError, Inbound, TurnReply},
    store::Write,
};

/// Runs one agent command; returns the exit code.
pub async fn run(app: &App, command: AgentCommand) -> anyhow::Result<i32> {
    match command {
        AgentCommand::Start { flow, customer, agent, channel } => start(app, &flow, &customer, &agent, &channel).await,
        AgentCommand::Lookup { by, value, last_name, agent } => {
            audit(app, &agent, "agent_lookup", &format!("{by}:{value}")).await?;
            let by = LookupBy::parse(&by).expect("clap allows only known kinds");
            let directory = crate::directory::Directory::new(app.store.clone());
            println!("{}", lookup(&directory, by, &value, last_name.as_deref()).await?);
            Ok(0)
        }
        AgentCommand::Transcript(who) => {
            let store = &app.store;
            let row = super::latest_conversation(store, &who.channel, &who.customer).await?;
            audit(app, &who.agent, "agent_viewed_transcript", &who.customer).await?;
            match transcript(store, row, usize::MAX).await? {
                Some(text) => println!("{text}"),
                None => println!("{} has no conversation on {}.", who.customer, who.channel),
            }
            Ok(0)
        }
        AgentCommand::TakeOver(who) => act(app, &who, |c| app.engine.take_over(c, &who.agent)).await,
        AgentCommand::Say { customer: who, text } => {
            act(app, &who, |c| app.engine.agent_say(c, &who.agent, &text)).await
        }
        AgentCommand::HandBack(who) => act(app, &who, |c| app.engine.hand_back(c, &who.agent)).await,
    }
}

async fn audit(app: &App, agent: &str, action: &str, subject: &str) -> anyhow::Result<()> {
    let write = Write::agent_audit("cli", agent, action, subject, json!({}));
    Ok(app.store.record(&[write], app.engine.clock().now_ms()).await?)
}

/// Take over, say, hand back: a turn on the customer's conversation.
async fn act<F, Fut>(app: &App, who: &CustomerArgs, turn: F) -> anyhow::Result<i32>
where
    F: FnOnce(Inbound) -> Fut,
    Fut: std::future::Future<Output = Result<TurnReply, EngineError>>,
{
    if who.channel == crate::channels::email::CHANNEL {
        eprintln!("error: e-mail conversations are mail threads; take them over from the mail client for now");
        return Ok(1);
    }
    match turn(Inbound::new(&who.channel, &who.customer, &who.customer, "")).await {
        Ok(reply) if reply.conversation_id.is_none() => {
            println!("{} has no conversation with the support team on {}.", who.customer, who.channel);
            Ok(1)
        }
        Ok(reply) => {
            println!("done; {} will see:", who.customer);
            show(&reply);
            Ok(0)
        }
        Err(e) => {
            tracing::error!("agent command failed: {e}");
            eprintln!("error: {}", e.user_message(&app.settings));
            Ok(1)
        }
    }
}

fn show(reply: &TurnReply) {
    for d in &reply.messages {
        for line in crate::channels::terminal::render(&d.message) {
            println!("  | {line}");
        }
    }
}

async fn start(app: &App, flow: &str, customer: &str, agent: &str, channel: &str) -> anyhow::Result<i32> {
    let started = if channel == crate::channels::email::CHANNEL {
        if !email_address::EmailAddress::is_valid(customer.trim()) {
            eprintln!("error: --for must be the customer's e-mail address on the email channel");
            return Ok(1);
        }
        // The first mail goes out now rather than at the next `serve`.
        let email = crate::channels::email::EmailChannel::new(app.engine.clone(), app.settings.clone());
        let started = email.start_for(customer, flow, agent).await;
        app.store.flush().await;
        app.outbox()?.run_once(app.engine.clock().now_ms()).await?;
        started
    } else {
        app.engine.start_for(channel, customer, flow, agent).await
    };
    Ok(match started {
        Ok(reply) => {
            println!("started {flow} for {customer} on {channel}; they will see:");
            show(&reply);
            0
        }
        // An agent needs to know what was wrong with the flow name;
        // anything else gets the same safe sentence a customer would.
        Err(e @ EngineError::Flow(_)) => {
            eprintln!("error: {e}");
            1
        }
        Err(e) => {
            tracing::error!("agent start failed: {e}");
            eprintln!("error: {}", e.user_message(&app.settings));
            1
        }
    })
}
