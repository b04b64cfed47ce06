//! Outbound mail: templates, and the outbox worker that sends what turns
//! queued (transactionally, with the turn) through SMTP or into
//! `<data>/mail/outbox/` as `.eml` files.

pub mod outbox;
pub mod templates;

/// Masks an address for display: `ann.lee@acme.example` → `a•••@acme.example`.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_string(),
    }
}

/// An address as limits count it: lower-case, without a sub-address
/// (`Ann+1@X.example` and `ann+2@x.example` are both `ann@x.example`), so
/// one mailbox cannot pass as many. Anything that is not an address is just
/// lower-cased.
pub fn limit_key(address: &str) -> String {
    let address = address.trim().to_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split_once('+').map_or(local, |(l, _)| l);
            format!("{local}@{domain}")
        }
        None => address,
    }
}

/// The domain part of an address, lower-case (`""` when there is none).
pub fn address_domain(address: &str) -> String {
    address.rsplit_once('@').map(|(_, d)| d.trim().to_lowercase()).unwrap_or_default()
}

/// The domain of our sender address (`mail.from`), for our Message-IDs.
pub fn domain_of(from: &str) -> &str {
    from.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>')).unwrap_or("frontdesk.invalid")
}

/// A stable, globally unique Message-ID (without the angle brackets).
pub fn new_message_id(from: &str) -> String {
    format!("{:032x}@{}", rand::random::<u128>(), domain_of(from))
}

#[cfg(test)]
mod tests {
    #[test]
    fn masking() {
        assert_eq!(super::mask_email("ann.lee@acme.example"), "a•••@acme.example");
        assert_eq!(super::mask_email("x"), "•••");
        let id = super::new_message_id("My Account <myaccount@frontdesk.example>");
        assert!(id.ends_with("@frontdesk.example") && id.len() == 32 + "@frontdesk.example".len(), "{id}");
    }

    #[test]
    fn sub_addresses_count_as_their_mailbox() {
        assert_eq!(super::limit_key("Victim+1@Example.COM"), "victim@example.com");
        assert_eq!(super::limit_key(" victim+a+b@example.com "), "victim@example.com");
        assert_eq!(super::limit_key("+@x"), "@x");
        assert_eq!(super::limit_key("1234567890"), "1234567890");
        assert_eq!(super::address_domain("a@Sub.Example"), "sub.example");
    }
}
