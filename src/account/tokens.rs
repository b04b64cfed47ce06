//! Single-use tokens for links in mails (password resets, contact-request
//! decisions): 128 random bits, URL-safe; only their SHA-256 is stored. And
//! the redemption of a reset token by the identity system.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::{Audit, Store, StoreError, Write};

/// A new token and the hash to store for it.
pub(crate) fn new() -> (String, String) {
    let token = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, rand::random::<[u8; 16]>());
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a token, to look one up by.
pub(crate) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Whether `token` has the shape of one of ours (22 URL-safe base64
/// characters): anything else is malformed, not merely unknown.
pub fn well_formed(token: &str) -> bool {
    token.len() == 22 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the identity system learns of a redeemed reset token: whose
/// password it may now let be set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redeemed {
    pub username: String,
    pub org_id: String,
    pub contact_id: i64,
    pub email: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// Used, expired, revoked, unknown, or its contact disabled: the same
    /// answer for all, so the API tells nothing about which.
    #[error("the token is used, expired or unknown")]
    Gone,
    #[error("not a token")]
    Malformed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Redeems a reset token, exactly once, and audits it (as done by `caller`,
/// the API's client), or audits the refusal.
pub async fn redeem(store: &Store, token: &str, caller: &str, now: i64) -> Result<Redeemed, RedeemError> {
    if !well_formed(token) {
        return Err(RedeemError::Malformed);
    }
    let audit = |action: &str, subject: String| {
        Write::Audit(Audit {
            channel: "api".into(),
            actor: caller.to_string(),
            by_agent: None,
            action: action.into(),
            subject,
            detail: json!({}),
        })
    };
    let hash = hash(token);
    let redeemed = store
        .redeem_recovery_token(&hash, now, |c| audit("recovery_token_redeemed", format!("contact:{}", c.id)))
        .await?;
    match redeemed {
        Some(c) => Ok(Redeemed {
            username: c.username,
            org_id: c.org_id.to_string(),
            contact_id: c.id,
            email: c.email.to_string(),
        }),
        None => {
            // The hash's first characters tell operators which token was
            // tried, without the token.
            store.record(&[audit("recovery_token_refused", format!("token:{}", &hash[..12]))], now).await?;
            Err(RedeemError::Gone)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, ha) = super::new();
        let (b, _) = super::new();
        assert_ne!(a, b);
        assert_eq!(a.len(), 22, "128 bits in unpadded base64");
        assert_eq!(ha, super::hash(&a));
        assert_eq!(ha.len(), 64);
        assert!(super::well_formed(&a));
        assert!(!super::well_formed("short") && !super::well_formed(&format!("{}!", &a[..21])));
    }
}
