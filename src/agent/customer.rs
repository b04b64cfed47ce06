//! Who a customer is, as an agent names them: the one place that knows how
//! each kind of channel keys its conversations.

use crate::{channels::email::CHANNEL as EMAIL, domain::EmailAddress, engine::Inbound};

/// A customer an agent acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    /// Someone a channel knows by an id (a terminal name, a Discord or Slack
    /// user id): their conversation is keyed by that id.
    Member {
        channel: String,
        id: String,
        /// How the channel vouches for who they are (`discord`), if it does.
        verified: Option<String>,
    },
    /// An e-mail address (lower case): conversations are mail threads, found
    /// by the sender's address, and a flow starts as a new thread.
    Email(EmailAddress),
}

/// What is wrong with how an agent named a customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an e-mail address")]
pub struct NotAnAddress(pub String);

impl CustomerRef {
    pub fn member(channel: &str, id: &str) -> CustomerRef {
        CustomerRef::Member { channel: channel.to_string(), id: id.trim().to_string(), verified: None }
    }

    /// A member whose identity the channel vouches for.
    pub fn verified_member(channel: &str, id: &str, by: &str) -> CustomerRef {
        CustomerRef::Member { channel: channel.to_string(), id: id.trim().to_string(), verified: Some(by.into()) }
    }

    pub fn email(address: &str) -> Result<CustomerRef, NotAnAddress> {
        let address = address.trim();
        EmailAddress::parse(&address.to_lowercase()).map(CustomerRef::Email).map_err(|_| NotAnAddress(address.into()))
    }

    /// A customer named on a channel by a shell command: an address on the
    /// e-mail channel, an id anywhere else.
    pub fn on(channel: &str, customer: &str) -> Result<CustomerRef, NotAnAddress> {
        if channel == EMAIL {
            CustomerRef::email(customer)
        } else {
            Ok(CustomerRef::member(channel, customer))
        }
    }

    pub fn channel(&self) -> &str {
        match self {
            CustomerRef::Member { channel, .. } => channel,
            CustomerRef::Email(_) => EMAIL,
        }
    }

    /// Their id on the channel (the address, on e-mail).
    pub fn id(&self) -> &str {
        match self {
            CustomerRef::Member { id, .. } => id,
            CustomerRef::Email(address) => address,
        }
    }

    /// An empty message from them, to drive a turn on their conversation;
    /// `None` for e-mail, whose conversations are threads, not people.
    pub fn inbound(&self) -> Option<Inbound> {
        match self {
            CustomerRef::Member { channel, id, verified } => {
                let mut inbound = Inbound::new(channel, id, id, "");
                inbound.verified = verified.clone();
                Some(inbound)
            }
            CustomerRef::Email(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CustomerRef, EmailAddress};

    #[test]
    fn the_channel_decides_how_a_customer_is_named() {
        assert_eq!(
            CustomerRef::on("email", " Pat@Example.COM ").unwrap(),
            CustomerRef::Email(EmailAddress::parse("pat@example.com").unwrap())
        );
        assert!(CustomerRef::on("email", "pat").is_err(), "an e-mail customer needs an address");
        let member = CustomerRef::on("discord", "7001").unwrap();
        assert_eq!((member.channel(), member.id()), ("discord", "7001"));
        let inbound = member.inbound().unwrap();
        assert_eq!((inbound.conversation_key.as_str(), inbound.sender.as_str()), ("7001", "7001"));
        assert!(CustomerRef::email("pat@example.com").unwrap().inbound().is_none(), "mail threads are not people");
    }
}
