//! The e-mail channel in process, on SQLite and PostgreSQL: what a mail
//! becomes, exactly once, with its answer queued in the same commit.

mod common;

use std::sync::Arc;

use frontdesk::{
    channels::email::{EmailChannel, Outcome, Skip, Source},
    engine::Engine,
    mail::outbox,
    store::Store,
};
use serde_json::Value;

/// The channel with a per-address daily cap of `cap`; the caps on
/// unproven addresses (tests/limits.rs has theirs) are out of the way.
fn channel(store: &Store, cap: i64) -> EmailChannel {
    let mut settings = common::settings();
    settings.email.answers_per_sender_per_day = cap;
    settings.email.answers_per_unproven_domain_per_day = 1_000_000;
    settings.email.answers_to_unproven_per_day = 1_000_000;
    let settings = Arc::new(settings);
    let engine =
        Engine::builder(store.clone(), settings.clone()).effects(frontdesk::app::effects(store, &settings)).build();
    EmailChannel::new(engine, settings)
}

fn mail(from: &str, id: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("From: {from}\r\nSubject: I forgot my password\r\nMessage-ID: <{id}>\r\n{headers}\r\n{body}\r\n")
        .into_bytes()
}

fn imap(uid: u32, uidvalidity: u32) -> Source {
    Source::Imap { mailbox: "INBOX".into(), uidvalidity, uid }
}

both_backends!(a_mail_is_answered_once_and_replies_continue, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let ch = channel(&store, 20);
    let first = mail("Ann <ann@acme.example>", "m1@acme.example", "", "help");
    let Outcome::Answered { conversation_id } = ch.handle(&first, &imap(1, 7)).await.unwrap() else { panic!() };
    // The same mail again (a crash before the IMAP flag, a second instance):
    // recognised, nothing new queued.
    assert_eq!(ch.handle(&first, &imap(1, 7)).await.unwrap(), Outcome::AlreadyHandled);
    store.flush().await;
    let queued = outbox::entries(&store).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!((queued[0].to_addr.as_str(), queued[0].template.as_str()), ("ann@acme.example", "reply"));
    let context: Value = serde_json::from_str(&queued[0].context).unwrap();
    assert_eq!(context["_headers"]["in_reply_to"], "m1@acme.example");
    let subject = context["subject"].as_str().unwrap().to_string();
    assert_eq!(store.mail_checkpoint("INBOX").await.unwrap().map(|c| (c.uidvalidity, c.last_uid)), Some((7, 1)));

    // A reply, found by the tag in its subject alone.
    let reply = format!("From: ann@acme.example\r\nSubject: Re: {subject}\r\nMessage-ID: <m2@acme.example>\r\n\r\n2\r\n\r\n> quoted\r\n");
    assert_eq!(ch.handle(reply.as_bytes(), &imap(2, 7)).await.unwrap(), Outcome::Continued { conversation_id });
    // Someone else using the tag does not get into Ann's conversation.
    let intruder =
        format!("From: eve@evil.example\r\nSubject: Re: {subject}\r\nMessage-ID: <m3@evil.example>\r\n\r\n1\r\n");
    assert!(
        matches!(ch.handle(intruder.as_bytes(), &imap(3, 7)).await.unwrap(), Outcome::Answered { conversation_id: other } if other != conversation_id)
    );
    // A new UIDVALIDITY replaces the checkpoint.
    assert_eq!(
        ch.handle(&mail("bob@acme.example", "m4@acme.example", "", "hi"), &imap(1, 8))
            .await
            .unwrap()
            .to_string()
            .split(' ')
            .next(),
        Some("answered")
    );
    assert_eq!(store.mail_checkpoint("INBOX").await.unwrap().map(|c| (c.uidvalidity, c.last_uid)), Some((8, 1)));
    store.close().await;
});

both_backends!(machines_and_the_daily_cap_are_recorded_not_answered, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let ch = channel(&store, 2);
    let auto = mail("ann@acme.example", "a1@acme.example", "Auto-Submitted: auto-replied\r\n", "away");
    assert!(matches!(ch.handle(&auto, &Source::Ingest).await.unwrap(), Outcome::Skipped(Skip::AutoSubmitted(_))));
    for i in 0..2 {
        let m = mail("ann@acme.example", &format!("c{i}@acme.example"), "", "help");
        assert!(matches!(ch.handle(&m, &Source::Ingest).await.unwrap(), Outcome::Answered { .. }));
    }
    store.flush().await;
    let third = mail("ann@acme.example", "c2@acme.example", "", "help");
    assert_eq!(ch.handle(&third, &Source::Ingest).await.unwrap(), Outcome::Skipped(Skip::DailyCap));
    let (outcome, reason, _) = store.mail_outcome("c2@acme.example").await.unwrap().unwrap();
    assert_eq!((outcome.as_str(), reason.as_deref()), ("skipped", Some("daily_cap")));
    assert_eq!(outbox::entries(&store).await.unwrap().len(), 2);
    store.close().await;
});

both_backends!(many_mails_at_once_are_each_recorded_and_answered_once, |url: String| async move {
    let store = Store::open(&url, 8).await.unwrap();
    let ch = channel(&store, 1000);
    // Every mail twice, all at once: batches of turns commit together, and
    // the second copy of each is recognised.
    let mails: Vec<_> = (0..150u32)
        .flat_map(|i| {
            let raw =
                mail(&format!("c{i}@acme.example"), &format!("many-{i}@acme.example"), "", "I forgot my password");
            [(i, raw.clone(), imap(i + 1, 3)), (i, raw, imap(i + 1, 3))]
        })
        .collect();
    let results = ch.handle_many(mails, 64).await;
    assert_eq!(results.len(), 300);
    let answered = results.iter().filter(|(_, r)| matches!(r, Ok(Outcome::Answered { .. }))).count();
    let again = results.iter().filter(|(_, r)| matches!(r, Ok(Outcome::AlreadyHandled))).count();
    assert_eq!((answered, again), (150, 150), "{:?}", results.iter().find(|(_, r)| r.is_err()));
    store.flush().await;
    assert_eq!(store.mail_counts().await.unwrap(), (150, 150));
    assert_eq!(outbox::entries(&store).await.unwrap().len(), 150);
    assert_eq!(store.mail_checkpoint("INBOX").await.unwrap().map(|c| c.last_uid), Some(150));
    store.close().await;
});

both_backends!(a_verified_sender_on_record_skips_the_search, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let fixture = common::repo_path("tests/fixtures/directory");
    frontdesk::directory::import::import_dir(&store, &fixture, &Default::default(), 1).await.unwrap();
    let mut settings = common::settings();
    settings.email.trusted_authserv_id = Some("mx.frontdesk.example".into());
    let settings = Arc::new(settings);
    let engine =
        Engine::builder(store.clone(), settings.clone()).effects(frontdesk::app::effects(&store, &settings)).build();
    let ch = EmailChannel::new(engine, settings);
    let verified = "Authentication-Results: mx.frontdesk.example; dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example\r\n";
    let first = mail("Ann Lee <ann.lee@acme.example>", "v1@acme.example", verified, "I forgot my password");
    assert!(matches!(ch.handle(&first, &Source::Ingest).await.unwrap(), Outcome::Answered { .. }));
    store.flush().await;
    let queued = outbox::entries(&store).await.unwrap();
    let context: Value = serde_json::from_str(&queued[0].context).unwrap();
    let offer = context["messages"].to_string();
    assert!(offer.contains("You wrote from A•••@acme.example") && offer.contains("Acme Widgets GmbH"), "{offer}");
    let subject = context["subject"].as_str().unwrap();
    let yes = format!("From: ann.lee@acme.example\r\nSubject: Re: {subject}\r\nMessage-ID: <v2@acme.example>\r\n{verified}\r\nyes\r\n");
    assert!(matches!(ch.handle(yes.as_bytes(), &Source::Ingest).await.unwrap(), Outcome::Continued { .. }));
    store.flush().await;
    let queued = outbox::entries(&store).await.unwrap();
    let login = queued.iter().find(|e| e.template == "login_info").expect("login information queued");
    assert_eq!(login.to_addr, "Ann.Lee@acme.example", "to the address on record");

    // The same mail from an unverified sender (or with a foreign
    // authserv-id) gets the ordinary search.
    let forged = "Authentication-Results: mx.evil.example; dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example\r\n";
    let other = mail("ann.lee@acme.example", "v3@acme.example", forged, "I forgot my password");
    ch.handle(&other, &Source::Ingest).await.unwrap();
    store.flush().await;
    let last = outbox::entries(&store).await.unwrap().pop().unwrap();
    assert!(last.context.contains("How would you like to find your company record?"), "{}", last.context);

    // Authenticated From, but answers aimed elsewhere (Reply-To): the
    // authentication proves nothing about that address, so no shortcut.
    let aimed = mail(
        "ann.lee@acme.example",
        "v4@acme.example",
        &format!("{verified}Reply-To: eve@evil.example\r\n"),
        "I forgot my password",
    );
    ch.handle(&aimed, &Source::Ingest).await.unwrap();
    store.flush().await;
    let last = outbox::entries(&store).await.unwrap().pop().unwrap();
    assert_eq!(last.to_addr, "eve@evil.example");
    assert!(last.context.contains("How would you like to find your company record?"), "{}", last.context);
    assert!(!last.context.contains("You wrote from"), "{}", last.context);
    store.close().await;
});

both_backends!(in_process_dkim_verifies_a_sender, |url: String| async move {
    use mail_auth::{
        common::{crypto::Ed25519Key, headers::HeaderWriter as _},
        dkim::DkimSigner,
    };
    let store = Store::open(&url, 4).await.unwrap();
    let fixture = common::repo_path("tests/fixtures/directory");
    frontdesk::directory::import::import_dir(&store, &fixture, &Default::default(), 1).await.unwrap();
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
    let public = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key.public_key());
    let verifier = frontdesk::channels::email::dkim::DkimVerifier::system().unwrap();
    verifier.records().add_domain_key("s1", "acme.example", &format!("v=DKIM1; k=ed25519; p={public}")).unwrap();
    let ch = channel(&store, 20).with_dkim(verifier);
    let raw = "From: Ann Lee <ann.lee@acme.example>\r\nSubject: I forgot my password\r\nMessage-ID: <dkim-1@acme.example>\r\n\r\nhelp\r\n";
    let signature = DkimSigner::from_key(key)
        .domain("acme.example")
        .selector("s1")
        .headers(["From", "Subject", "Message-ID"])
        .sign(raw.as_bytes())
        .unwrap();
    let signed = format!("{}{raw}", signature.to_header());
    ch.handle(signed.as_bytes(), &Source::Ingest).await.unwrap();
    store.flush().await;
    let queued = outbox::entries(&store).await.unwrap();
    assert!(queued[0].context.contains("You wrote from A•••@acme.example"), "{}", queued[0].context);
    store.close().await;
});

both_backends!(the_daily_cap_counts_by_the_address_answers_go_to, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let ch = channel(&store, 2);
    // Three different senders all name one victim in Reply-To.
    for (i, from) in ["a@evil.example", "b@evil.example", "c@evil.example"].iter().enumerate() {
        let raw = mail(from, &format!("bomb-{i}@evil.example"), "Reply-To: victim@acme.example\r\n", "help");
        let outcome = ch.handle(&raw, &Source::Ingest).await.unwrap();
        store.flush().await;
        if i < 2 {
            assert!(matches!(outcome, Outcome::Answered { .. }), "{outcome:?}");
        } else {
            assert_eq!(outcome, Outcome::Skipped(Skip::DailyCap));
        }
    }
    store.close().await;
});
