//! Single-use tokens for links in mails (password resets, contact-request
//! decisions): 128 random bits, URL-safe; only their SHA-256 is stored.

use sha2::{Digest, Sha256};

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
    }
}
