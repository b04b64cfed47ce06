//! Proof that a customer reads the mail of an address: a 6-digit code
//! mailed to it, typed back in the conversation. Nothing is created for an
//! address, and no other mail goes to it, before it is proven (the
//! `verify_email` flow), so the chat can neither be used to learn whether
//! an address is on record nor to aim our mail at someone else.
//!
//! The code itself goes only into the mail; the conversation's journal
//! keeps a salted hash of it with its expiry (`proof`), which
//! `check_email_code` compares against what the customer typed.

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{limits, Refusal};
use crate::{
    config::Settings,
    directory::Directory,
    domain::EmailAddress,
    engine::{EffectCall, EffectError},
    store::{outbox::NewMail, Quota, Write},
};

/// How long a code works.
const CODE_TTL_MINUTES: i64 = 15;

fn digest(conversation: i64, email: &str, code: &str, expires_at: i64) -> String {
    let input = format!("{conversation}:{}:{code}:{expires_at}", email.trim().to_lowercase());
    hex::encode(Sha256::digest(input.as_bytes()))
}

/// The `send_email_code(email)` effect: mails a fresh code, within the
/// address's and the identity's quotas.
pub(crate) async fn send(d: &Directory, s: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let email = EmailAddress::parse(&call.arg_str(0)?).map_err(|e| EffectError::Failed(e.to_string()))?;
    let quotas = [
        Quota::new(format!("email_code:to:{}", crate::mail::limit_key(&email)), s.limits.email_codes_per_address),
        Quota::new(format!("email_code:who:{}", limits::identity(call)), s.limits.email_codes_per_identity),
    ];
    if let Some(wait) = limits::take(d.store(), call, &quotas).await? {
        call.audit("email_code_refused", &crate::mail::limit_key(&email), json!({ "reason": "rate limit" }));
        return Ok(json!({ "sent": false, "reason": Refusal::RateLimited, "wait_minutes": limits::minutes(wait) }));
    }
    let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
    let expires_at = call.context.now_ms + CODE_TTL_MINUTES * 60_000;
    // The mail holds our words only: nothing the customer typed reaches an
    // address before it is proven.
    call.write(Write::Mail(NewMail {
        message_id: crate::mail::new_message_id(&s.mail.from),
        template: "email_code".into(),
        to: email.clone(),
        context: json!({ "code": code, "minutes": CODE_TTL_MINUTES }),
    }));
    call.audit("email_code_sent", &crate::mail::limit_key(&email), json!({}));
    let proof = format!("{expires_at}:{}", digest(call.context.conversation_id, &email, &code, expires_at));
    Ok(json!({ "sent": true, "proof": proof, "minutes": CODE_TTL_MINUTES }))
}

/// The `check_email_code(email, proof, typed)` effect: `{ok}`, or why not
/// (`wrong`, `expired`).
pub(crate) async fn check(_: &Directory, _: &Settings, call: &mut EffectCall) -> Result<Value, EffectError> {
    let email = call.arg_str(0)?;
    let proof = call.arg_str(1)?;
    let typed: String = call.arg_str(2)?.chars().filter(char::is_ascii_digit).collect();
    let Some((expires_at, hash)) = proof.split_once(':').and_then(|(e, h)| Some((e.parse::<i64>().ok()?, h))) else {
        return Err(EffectError::Failed("check_email_code: not a proof from send_email_code".into()));
    };
    if call.context.now_ms > expires_at {
        return Ok(json!({ "ok": false, "reason": Refusal::Expired }));
    }
    let subject = crate::mail::limit_key(&email);
    if digest(call.context.conversation_id, &email, &typed, expires_at) != hash {
        call.audit("email_code_wrong", &subject, json!({}));
        return Ok(json!({ "ok": false, "reason": Refusal::Wrong }));
    }
    call.audit("email_proven", &subject, json!({}));
    Ok(json!({ "ok": true }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_proof_is_bound_to_the_conversation_address_code_and_expiry() {
        let d = super::digest(7, "Ann@X.example", "123456", 1000);
        assert_eq!(d, super::digest(7, "ann@x.example ", "123456", 1000));
        for other in [
            super::digest(8, "ann@x.example", "123456", 1000),
            super::digest(7, "bob@x.example", "123456", 1000),
            super::digest(7, "ann@x.example", "123457", 1000),
            super::digest(7, "ann@x.example", "123456", 1001),
        ] {
            assert_ne!(d, other);
        }
    }
}
