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
}
