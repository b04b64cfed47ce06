//! The engine against a real store: replay, concurrency, versioning and the
//! sandbox.

mod common;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{lines, msg, say, settings_with_flows};
use frontdesk::{
    engine::{CommitHook, EffectError, Effects, Engine},
    store::Store,
};
use serde_json::json;

fn flows_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, src) in files {
        std::fs::write(dir.path().join(format!("{name}.rhai")), src).unwrap();
    }
    dir
}

async fn engine_on(url: &str, flows: &Path) -> Engine {
    let store = Store::open(url, 4).await.unwrap();
    Engine::builder(store, settings_with_flows(flows)).build()
}

const TWO_QUESTIONS: &str = r#"
let a = ask("First?");
say(`a=${a}`);
let b = ask("Second?");
say(`b=${b}`);
"#;

/// A hook that makes the first commit attempt of two turns wait for each
/// other, so both read the same conversation state before either writes.
fn rendezvous() -> CommitHook {
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    Arc::new(move |attempt| {
        let barrier = barrier.clone();
        Box::pin(async move {
            if attempt == 0 {
                barrier.wait().await;
            }
        })
    })
}

both_backends!(two_instances_one_conversation_one_wins, |url: String| async move {
    let flows = flows_dir(&[("router", TWO_QUESTIONS)]);
    let settings = settings_with_flows(flows.path());
    let first = Engine::builder(Store::open(&url, 4).await.unwrap(), settings.clone()).build();
    assert_eq!(say(&first, "ann", "hi").await, vec!["First?"]);

    // Two instances (separate stores, caches and writers) get a message for
    // the same conversation at the same moment.
    let hook = rendezvous();
    let a = Engine::builder(Store::open(&url, 4).await.unwrap(), settings.clone()).before_commit(hook.clone()).build();
    let b = Engine::builder(Store::open(&url, 4).await.unwrap(), settings.clone()).before_commit(hook).build();
    let (ra, rb) = tokio::join!(a.handle(msg("ann", "one")), b.handle(msg("ann", "two")));
    let (ra, rb) = (lines(&ra.unwrap()), lines(&rb.unwrap()));

    // Exactly one answered the first question; the other was retried on the
    // state the winner left and answered the second.
    let mut all = [ra.clone(), rb.clone()];
    all.sort();
    let first_answer =
        all.iter().find(|l| l[0] == "a=one" || l[0] == "a=two").expect("one turn answered the first question").clone();
    let second =
        all.iter().find(|l| l[0].starts_with("b=")).expect("the other turn answered the second question").clone();
    assert_eq!(first_answer, vec![first_answer[0].clone(), "Second?".to_string()]);
    let winner = first_answer[0].trim_start_matches("a=").to_string();
    let loser = if winner == "one" { "two" } else { "one" };
    assert_eq!(second, vec![format!("b={loser}")]);

    let conv = a.store().latest_conversation("test", "ann").await.unwrap().unwrap();
    assert_eq!(conv.status, frontdesk::store::Status::Done);
    let transcript = a.store().transcript(conv.id).await.unwrap();
    let seqs: Vec<i64> = transcript.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as i64).collect::<Vec<_>>(), "no lost or doubled transcript rows");
});

both_backends!(a_message_delivered_twice_is_answered_once, |url: String| async move {
    let flows = flows_dir(&[("router", TWO_QUESTIONS)]);
    let engine = engine_on(&url, flows.path()).await;
    let mut m = msg("bo", "hi");
    m.external_id = Some("evt-1".into());
    let first = engine.handle(m.clone()).await.unwrap();
    assert_eq!(lines(&first), vec!["First?"]);
    let again = engine.handle(m.clone()).await.unwrap();
    assert!(again.duplicate && again.messages.is_empty());
    // Also from another instance with a cold cache.
    let other = engine_on(&url, flows.path()).await;
    assert!(other.handle(m).await.unwrap().duplicate);
});

both_backends!(a_stale_button_click_is_not_applied, |url: String| async move {
    let flows = flows_dir(&[(
        "router",
        r#"let x = choose("Pick", ["A", "B"]); let y = choose("Again", ["C", "D"]); say(`${x}${y}`);"#,
    )]);
    let engine = engine_on(&url, flows.path()).await;
    let r = engine.handle(msg("cy", "hi")).await.unwrap();
    let step = match &r.messages[0].message {
        frontdesk::engine::Outbound::Prompt { step, .. } => *step,
        other => panic!("expected a prompt, got {other:?}"),
    };
    let mut click = msg("cy", "1");
    click.reply_to_step = Some(step);
    let answered = engine.handle(click.clone()).await.unwrap();
    assert_eq!(lines(&answered), vec!["Again", "  1. C", "  2. D"]);
    assert!(!answered.stale);
    // The same button clicked again: the old question is not answered twice.
    let again = engine.handle(click).await.unwrap();
    assert_eq!(lines(&again), vec!["That question was already answered, so I ignored that reply."]);
    assert!(again.stale);
    assert_eq!(say(&engine, "cy", "D").await, vec!["AD"]);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_run_once_and_replay_from_the_journal() {
    let db = common::TestDb::sqlite();
    let flows = flows_dir(&[(
        "router",
        r#"
        let n = count_call("first");
        say(`first=${n}`);
        let name = ask("Name?");
        let m = count_call(name);
        say(`second=${m} for ${name}`);
        let t = now();
        say(`done at ${t}`);
        "#,
    )]);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut effects = Effects::new();
    let c = calls.clone();
    effects.register("count_call", 1, move |call| {
        let c = c.clone();
        async move {
            let arg = call.arg_str(0)?;
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(json!(format!("{}:{arg}", c.fetch_add(1, Ordering::SeqCst) + 1)))
        }
    });
    let store = Store::open(&db.url, 4).await.unwrap();
    let engine = Engine::builder(store, settings_with_flows(flows.path()))
        .effects(effects)
        .clock(frontdesk::engine::Clock::manual(42))
        .build();
    assert_eq!(say(&engine, "d", "hi").await, vec!["first=1:first", "Name?"]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The second turn replays the first effect from the journal.
    assert_eq!(say(&engine, "d", "Dee").await, vec!["second=2:Dee for Dee", "done at 42"]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_effect_failure_is_recorded_or_retried() {
    let db = common::TestDb::sqlite();
    let flows = flows_dir(&[("router", r#"let r = lookup("x"); say(`got ${r}`);"#)]);
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut effects = Effects::new();
    let a = attempts.clone();
    effects.register("lookup", 1, move |_| {
        let a = a.clone();
        async move {
            match a.fetch_add(1, Ordering::SeqCst) {
                0 => Err(EffectError::retry(anyhow::anyhow!("directory down"))),
                1 => Err(EffectError::Failed("no such record".into())),
                _ => Ok(json!("never")),
            }
        }
    });
    let store = Store::open(&db.url, 4).await.unwrap();
    let engine = Engine::builder(store, settings_with_flows(flows.path())).effects(effects).build();
    // A passing fault: nothing is kept, the customer is asked to retry.
    let err = engine.handle(msg("e", "hi")).await.unwrap_err();
    assert_eq!(err.user_message(engine.settings()), engine.settings().messages.busy);
    assert!(engine.store().latest_conversation("test", "e").await.unwrap().is_none());
    // A permanent failure: the flow throws, the customer gets the apology.
    assert_eq!(say(&engine, "e", "hi").await, vec![engine.settings().messages.apology.clone()]);
    assert_eq!(
        engine.store().latest_conversation("test", "e").await.unwrap().unwrap().status,
        frontdesk::store::Status::Failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_keep_their_flow_version_after_an_edit() {
    let db = common::TestDb::sqlite();
    let flows = flows_dir(&[("router", r#"let a = ask("v1 question"); say(`v1 got ${a}`);"#)]);
    let engine = engine_on(&db.url, flows.path()).await;
    assert_eq!(say(&engine, "old", "hi").await, vec!["v1 question"]);

    // Edit the file (different length, so the change is seen whatever the
    // file system's time resolution).
    std::fs::write(flows.path().join("router.rhai"), r#"let a = ask("v2 question!"); say(`v2 got ${a}`);"#).unwrap();
    assert_eq!(
        say(&engine, "new", "hi").await,
        vec!["v2 question!"],
        "new conversations get the edit without a restart"
    );
    assert_eq!(say(&engine, "old", "x").await, vec!["v1 got x"], "the running conversation stays on v1");

    // After a restart the pinned version comes from the store.
    assert_eq!(say(&engine, "old2", "hi").await, vec!["v2 question!"]);
    std::fs::write(flows.path().join("router.rhai"), r#"let a = ask("v3"); say(`v3 got ${a}`);"#).unwrap();
    let restarted = engine_on(&db.url, flows.path()).await;
    assert_eq!(say(&restarted, "old2", "y").await, vec!["v2 got y"]);
}

async fn failing(source: &str) -> (Vec<String>, String, Duration) {
    let db = common::TestDb::sqlite();
    let flows = flows_dir(&[("router", source), ("other", "start(\"router\");")]);
    let engine = engine_on(&db.url, flows.path()).await;
    let started = Instant::now();
    let out = say(&engine, "f", "hi").await;
    let took = started.elapsed();
    let status = engine.store().latest_conversation("test", "f").await.unwrap().unwrap().status;
    (out, status.to_string(), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_that_throw_or_run_away_fail_politely() {
    let apology = common::settings().messages.apology;
    for source in [
        r#"say("before"); throw "boom";"#,
        "loop { }",
        "fn f(n) { f(n + 1) } f(0);",
        r#"let s = "x"; loop { s += s; }"#,
        r#"let a = []; loop { a.push(1); }"#,
        r#"import "secrets" as s; say("no");"#,
        r#"start("other");"#,
        r#"start("../../etc/passwd");"#,
        r#"start("missing");"#,
        r#"setting("database.url");"#,
    ] {
        let (out, status, took) = failing(source).await;
        assert_eq!(out.last(), Some(&apology), "{source}: {out:?}");
        assert_eq!(status, "failed", "{source}");
        assert!(took < Duration::from_secs(10), "{source} took {took:?}");
    }
    // Output before the failure is still sent, once.
    let (out, _, _) = failing(r#"say("before"); throw "boom";"#).await;
    assert_eq!(out, vec!["before".to_string(), apology]);
}

#[test]
fn eval_and_file_access_are_not_available_to_flows() {
    let settings = common::settings();
    let engine = Engine::script_engine_for(&settings, &Effects::new());
    assert!(frontdesk::engine::flows::compile(&engine, "x.rhai", r#"eval("say(1)")"#).is_err());
    assert!(frontdesk::flowcheck::check_dir(&engine, &common::repo_path("flows"), "router").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_text_is_cleaned_and_answers_validated() {
    let db = common::TestDb::sqlite();
    let flows = flows_dir(&[(
        "router",
        r#"
        let t = ask("Say something");
        say(`[${t}] ${t.len()}`);
        let e = ask_email("E-mail?");
        let p = ask_phone("Phone?", "DE");
        say(`${e} ${p}`);
        "#,
    )]);
    let engine = engine_on(&db.url, flows.path()).await;
    say(&engine, "g", "hi").await;
    let long = format!("a\u{0}b\u{1b}[2J\u{202e}c{}", "x".repeat(5000));
    let out = say(&engine, "g", &long).await;
    assert!(out[0].starts_with("[ab[2Jcxxx"), "{out:?}");
    assert!(out[0].ends_with("] 2000"), "capped at max_input_chars: {}", &out[0][out[0].len() - 10..]);
    assert_eq!(say(&engine, "g", "not-an-address").await[1], "E-mail?");
    say(&engine, "g", "Ann@Example.COM").await;
    let bad = say(&engine, "g", "12").await;
    assert_eq!(bad[0], "Please type a phone number, with its area code.");
    assert_eq!(say(&engine, "g", "030 901820").await, vec!["Ann@example.com +4930901820"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_message_gets_an_answer() {
    let db = common::TestDb::sqlite();
    let engine = engine_on(&db.url, &common::repo_path("flows")).await;
    assert_eq!(say(&engine, "h", "\u{0}\u{7}  ").await, vec![engine.settings().messages.unreadable.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_clock_deadline_stops_a_slow_flow() {
    // With an operation budget too large to stop it, only the deadline can.
    let db = common::TestDb::sqlite();
    let flows = flows_dir(&[("router", r#"say("working"); let n = 0; loop { n += 1; }"#)]);
    let mut settings = (*settings_with_flows(flows.path())).clone();
    settings.engine.max_operations = 1_000_000_000;
    settings.engine.turn_deadline = Duration::from_millis(300);
    let store = Store::open(&db.url, 4).await.unwrap();
    let engine = Engine::builder(store, Arc::new(settings)).build();
    let started = Instant::now();
    let out = say(&engine, "slow", "hi").await;
    let took = started.elapsed();
    assert_eq!(out, vec!["working".to_string(), engine.settings().messages.apology.clone()]);
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(
        engine.store().latest_conversation("test", "slow").await.unwrap().unwrap().status,
        frontdesk::store::Status::Failed
    );
}

both_backends!(a_double_click_in_one_instance_applies_once, |url: String| async move {
    // Two turns of one conversation in the same instance at the same moment
    // (they will usually share a batch in the store's writer).
    let flows = flows_dir(&[("router", TWO_QUESTIONS)]);
    let store = Store::open(&url, 4).await.unwrap();
    let engine = Engine::builder(store, settings_with_flows(flows.path())).before_commit(rendezvous()).build();
    let (first, second) = tokio::join!(engine.handle(msg("dc", "hi")), engine.handle(msg("dc", "hello")));
    let mut replies = [lines(&first.unwrap()), lines(&second.unwrap())];
    replies.sort();
    // One started the conversation; the other answered its first question.
    assert_eq!(replies[0], vec!["First?"]);
    assert!(replies[1] == vec!["a=hello", "Second?"] || replies[1] == vec!["a=hi", "Second?"], "{replies:?}");
    let conv = engine.store().open_conversation("test", "dc").await.unwrap().unwrap();
    assert_eq!(engine.store().transcript(conv.id).await.unwrap().len(), 5, "in, out, in, out, out");
});

both_backends!(a_double_answer_in_one_instance_applies_once, |url: String| async move {
    // Two answers to the same question from one instance at the same moment:
    // both update the same row from the same version (usually in the same
    // batch, where the writer puts them in successive rounds).
    let flows = flows_dir(&[("router", TWO_QUESTIONS)]);
    let store = Store::open(&url, 4).await.unwrap();
    let plain = Engine::builder(store.clone(), settings_with_flows(flows.path())).build();
    assert_eq!(say(&plain, "da", "hi").await, vec!["First?"]);
    let engine = Engine::builder(store, settings_with_flows(flows.path())).before_commit(rendezvous()).build();
    let (x, y) = tokio::join!(engine.handle(msg("da", "x")), engine.handle(msg("da", "y")));
    let mut replies = [lines(&x.unwrap()), lines(&y.unwrap())];
    replies.sort();
    let ok = replies == [vec!["a=x".to_string(), "Second?".to_string()], vec!["b=y".to_string()]]
        || replies == [vec!["a=y".to_string(), "Second?".to_string()], vec!["b=x".to_string()]];
    assert!(ok, "{replies:?}");
});

// A cold start with many first turns at once compiles each flow once: the
// others wait for the first compilation instead of repeating it.
both_backends!(concurrent_first_turns_compile_a_flow_once, |url: String| async move {
    let flows = flows_dir(&[("router", "let a = ask(\"First?\"); start(\"other\");"), ("other", "say(\"done\");")]);
    let engine = engine_on(&url, flows.path()).await;
    let turns = (0..50).map(|i| {
        let engine = engine.clone();
        tokio::spawn(async move { say(&engine, &format!("c{i}"), "hi").await })
    });
    for t in futures::future::join_all(turns).await {
        assert_eq!(t.unwrap(), vec!["First?"]);
    }
    assert_eq!(engine.compilations(), 1, "the router was compiled once");
    let answers = (0..50).map(|i| {
        let engine = engine.clone();
        tokio::spawn(async move { say(&engine, &format!("c{i}"), "x").await })
    });
    futures::future::join_all(answers).await;
    assert_eq!(engine.compilations(), 2, "and the flow it starts once");
    assert_eq!(engine.warm_up().await.unwrap(), 2);
    assert_eq!(engine.compilations(), 2, "warming up compiles nothing twice");
});
