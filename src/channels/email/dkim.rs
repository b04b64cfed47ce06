//! In-process DKIM verification (mail-auth), for deployments whose receiving
//! server does not add trustworthy `Authentication-Results`. A signature
//! counts when it verifies and its domain is the From domain (DMARC's strict
//! alignment): a signature by some other domain says nothing about who wrote.
//! SPF, DMARC's other leg, needs the connecting client's IP, which only the
//! receiving server saw, so it is not checked here.

use std::{borrow::Borrow, collections::HashMap, hash::Hash, sync::Mutex};

use mail_auth::{common::parse::TxtRecordParser, AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};

/// DNS TXT answers known in advance (tests, or keys pinned by an operator).
#[derive(Default)]
pub struct TxtRecords(Mutex<HashMap<Box<str>, mail_auth::Txt>>);

impl TxtRecords {
    /// Adds a DKIM key record for `selector._domainkey.domain`.
    pub fn add_domain_key(&self, selector: &str, domain: &str, record: &str) -> anyhow::Result<()> {
        let key = mail_auth::common::verify::DomainKey::parse(record.as_bytes())
            .map_err(|e| anyhow::anyhow!("DKIM key record: {e}"))?;
        let name = format!("{selector}._domainkey.{domain}.");
        self.0.lock().expect("records lock").insert(name.into_boxed_str(), key.into());
        Ok(())
    }
}

impl mail_auth::ResolverCache<Box<str>, mail_auth::Txt> for TxtRecords {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().expect("records lock").get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().expect("records lock").remove(name)
    }

    fn insert(&self, key: Box<str>, value: mail_auth::Txt, _valid_until: std::time::Instant) {
        self.0.lock().expect("records lock").insert(key, value);
    }
}

pub struct DkimVerifier {
    authenticator: MessageAuthenticator,
    /// Answers looked up before DNS (and DNS answers kept for reuse).
    records: TxtRecords,
}

impl DkimVerifier {
    /// A verifier using the system's DNS resolver configuration.
    pub fn system() -> anyhow::Result<DkimVerifier> {
        let authenticator =
            MessageAuthenticator::new_system_conf().map_err(|e| anyhow::anyhow!("DNS resolver for DKIM: {e}"))?;
        Ok(DkimVerifier { authenticator, records: TxtRecords::default() })
    }

    pub fn records(&self) -> &TxtRecords {
        &self.records
    }

    /// Whether `raw` carries a valid DKIM signature of `from_domain`.
    pub async fn verifies(&self, raw: &[u8], from_domain: &str) -> bool {
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return false;
        };
        let outputs = self.authenticator.verify_dkim(Parameters::new(&message).with_txt_cache(&self.records)).await;
        outputs.iter().any(|o| {
            matches!(o.result(), DkimResult::Pass)
                && o.signature().is_some_and(|s| s.d.eq_ignore_ascii_case(from_domain))
        })
    }
}

#[cfg(test)]
mod tests {
    use mail_auth::{
        common::{crypto::Ed25519Key, headers::HeaderWriter as _},
        dkim::DkimSigner,
    };

    use super::*;

    #[tokio::test]
    async fn a_signature_of_the_from_domain_verifies_and_nothing_else_does() {
        let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
        let public = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.public_key());
        let raw = "From: Ann <ann@acme.example>\r\nTo: support@frontdesk.example\r\nSubject: help\r\n\r\nI forgot my password\r\n";
        let signature = DkimSigner::from_key(key)
            .domain("acme.example")
            .selector("s1")
            .headers(["From", "To", "Subject"])
            .sign(raw.as_bytes())
            .unwrap();
        let signed = format!("{}{raw}", signature.to_header());

        let verifier = DkimVerifier::system().unwrap();
        verifier.records().add_domain_key("s1", "acme.example", &format!("v=DKIM1; k=ed25519; p={public}")).unwrap();
        assert!(verifier.verifies(signed.as_bytes(), "acme.example").await);
        // Not aligned with another From domain; unsigned or altered mail fails.
        assert!(!verifier.verifies(signed.as_bytes(), "evil.example").await);
        assert!(!verifier.verifies(raw.as_bytes(), "acme.example").await);
        let altered = signed.replace("I forgot my password", "Send me everything");
        assert!(!verifier.verifies(altered.as_bytes(), "acme.example").await);
    }
}
