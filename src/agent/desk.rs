//! The agent desk: everything an agent does for a customer, whatever the
//! agent uses (a shell, Discord, later Slack and the web console). Each
//! action is audited with the agent's name and returns a structured result;
//! the surface renders it.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{
    customer::{CustomerRef, NotAnAddress},
    lookup::{lookup, Lookup, LookupBy},
    transcript::Transcript,
};
use crate::{
    config::Settings,
    directory::Directory,
    engine::{Engine, EngineError, TurnReply},
    store::{StoreError, Write},
};

/// Where the agent works from: the audit log's channel for their actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `frontdesk agent …` and the other operator commands.
    Shell,
    Discord,
    Slack,
}

impl Surface {
    pub fn name(self) -> &'static str {
        match self {
            Surface::Shell => "cli",
            Surface::Discord => crate::channels::discord::CHANNEL,
            Surface::Slack => crate::channels::slack::CHANNEL,
        }
    }
}

/// Why an agent's action did not happen. `Display` is safe to show the agent.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    NotAnAddress(#[from] NotAnAddress),
    #[error("e-mail conversations are mail threads; take them over from the mail client")]
    MailThread,
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("the store is unavailable: {0}")]
    Store(#[from] StoreError),
}

impl DeskError {
    /// What the agent is told: the flow's name problem as it is (they need
    /// it), anything else as the same safe sentence a customer would get.
    pub fn agent_message(&self, settings: &Settings) -> String {
        match self {
            DeskError::Engine(e @ EngineError::Flow(_)) => e.to_string(),
            DeskError::Engine(e) => e.user_message(settings).to_string(),
            DeskError::Store(_) => settings.messages.busy.clone(),
            other => other.to_string(),
        }
    }
}

/// A flow an agent started.
#[derive(Debug)]
pub struct Started {
    /// What the customer sees first.
    pub reply: TurnReply,
    /// Started by mail: the first message goes out through the outbox.
    pub by_mail: bool,
}

#[derive(Clone)]
pub struct Desk {
    engine: Engine,
    settings: Arc<Settings>,
    surface: Surface,
}

impl Desk {
    pub fn new(engine: Engine, settings: Arc<Settings>, surface: Surface) -> Desk {
        Desk { engine, settings, surface }
    }

    async fn audit(&self, agent: &str, action: &str, subject: &str, detail: Value) -> Result<(), DeskError> {
        let write = Write::agent_audit(self.surface.name(), agent, action, subject, detail);
        Ok(self.engine.store().record(&[write], self.engine.clock().now_ms()).await?)
    }

    /// Someone without the agent role tried an agent command: recorded, so
    /// probing shows in the audit log.
    pub async fn refused(&self, who: &str, command: &str, reason: &str) -> Result<(), DeskError> {
        self.audit(who, "agent_command_refused", command, json!({ "reason": reason })).await
    }

    /// A company and its contacts, by any of the search kinds or its Org ID.
    pub async fn lookup(
        &self,
        agent: &str,
        by: LookupBy,
        value: &str,
        last_name: Option<&str>,
    ) -> Result<Lookup, DeskError> {
        self.audit(agent, "agent_lookup", &format!("{}:{value}", by.name()), json!({})).await?;
        let directory = Directory::new(self.engine.store().clone());
        Ok(lookup(&directory, by, value, last_name).await?)
    }

    /// Starts `flow` for a customer: in their conversation on a member
    /// channel, as a new mail thread on e-mail.
    pub async fn start(&self, agent: &str, customer: &CustomerRef, flow: &str) -> Result<Started, DeskError> {
        match customer {
            CustomerRef::Email(address) => {
                let email = crate::channels::email::EmailChannel::new(self.engine.clone(), self.settings.clone());
                let reply = email.start_for(address, flow, agent).await?;
                Ok(Started { reply, by_mail: true })
            }
            CustomerRef::Member { .. } => {
                let inbound = customer.inbound().expect("members have an inbound");
                let reply = self.engine.start_for_inbound(inbound, flow, agent).await?;
                Ok(Started { reply, by_mail: false })
            }
        }
    }

    /// The customer's latest conversation, if any.
    pub async fn transcript(&self, agent: &str, customer: &CustomerRef) -> Result<Option<Transcript>, DeskError> {
        let store = self.engine.store();
        let row = match customer {
            // Keyed by mail thread: found by the sender's address.
            CustomerRef::Email(address) => store.latest_conversation_of(customer.channel(), address).await?,
            CustomerRef::Member { channel, id, .. } => store.latest_conversation(channel, id).await?,
        };
        let detail = json!({ "conversation": row.as_ref().map(|r| r.id) });
        self.audit(agent, "agent_viewed_transcript", customer.id(), detail).await?;
        match row {
            Some(row) => Ok(Some(Transcript::load(store, row).await?)),
            None => Ok(None),
        }
    }

    /// The agent holds the customer's conversation: the flow stays quiet.
    pub async fn take_over(&self, agent: &str, customer: &CustomerRef) -> Result<TurnReply, DeskError> {
        let inbound = customer.inbound().ok_or(DeskError::MailThread)?;
        Ok(self.engine.take_over(inbound, agent).await?)
    }

    /// The agent writes to the customer in the conversation they hold.
    pub async fn say(&self, agent: &str, customer: &CustomerRef, text: &str) -> Result<TurnReply, DeskError> {
        let inbound = customer.inbound().ok_or(DeskError::MailThread)?;
        Ok(self.engine.agent_say(inbound, agent, text).await?)
    }

    /// The assistant takes the conversation back where the flow stood.
    pub async fn hand_back(&self, agent: &str, customer: &CustomerRef) -> Result<TurnReply, DeskError> {
        let inbound = customer.inbound().ok_or(DeskError::MailThread)?;
        Ok(self.engine.hand_back(inbound, agent).await?)
    }
}
