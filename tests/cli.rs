//! The binary as an operator uses it.

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

fn frontdesk() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).env_remove("FRONTDESK_CRASH_AT");
    for (k, _) in std::env::vars() {
        if k.starts_with("FRONTDESK__") {
            c.env_remove(k);
        }
    }
    c
}

/// Every command path clap knows (so none is forgotten), and `--help` works for each.
#[test]
fn every_command_has_help() {
    fn paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            paths(sub, path, out);
        }
    }
    let mut all = vec![Vec::new()];
    paths(&<frontdesk::cli::Cli as clap::CommandFactory>::command(), Vec::new(), &mut all);
    assert!(all.iter().any(|p| p == &["screening", "check"]) && all.len() > 25, "{all:?}");
    for path in all {
        let out = frontdesk().args(&path).arg("--help").output().unwrap();
        assert!(out.status.success(), "{path:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{path:?}");
    }
}

#[test]
fn a_bad_config_reports_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[engine]\nidle_expiry = \"whenever\"\n[slack]\nbot_token = \"xoxb-secret\"\n").unwrap();
    let out = frontdesk()
        .arg("--config")
        .arg(&file)
        .arg("--data")
        .arg(dir.path())
        .args(["flows", "check"])
        .env("FRONTDESK__ENGINE__MAX_CALL_DEPTH", "deep")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in ["engine.idle_expiry", "slack.bot_token", "engine.max_call_depth"] {
        assert!(err.contains(key), "{key} missing from {err}");
    }
    assert!(!err.contains("xoxb-secret"), "secret leaked: {err}");
}

/// A temp folder holding a copy of the repository's flows.
fn copy_of_flows() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(common::repo_path("flows")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "rhai") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

#[test]
fn flows_check_and_test_pass_and_a_broken_flow_fails_with_its_line() {
    let out = frontdesk().args(["flows", "check"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = frontdesk().args(["--data", "/nonexistent-unused", "flows", "test"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    let dir = copy_of_flows();
    std::fs::write(dir.path().join("broken.rhai"), "say(\"fine\");\nlet x = if;\n").unwrap();
    let out = frontdesk().args(["flows", "check"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("broken.rhai:2:"), "{text}");

    // A transcript that no longer matches fails `flows test` with a diff.
    std::fs::write(dir.path().join("wrong.chat"), "> hi\n< Bonjour\n").unwrap();
    let out = frontdesk().args(["flows", "test"]).arg(dir.path().join("wrong.chat")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("-Bonjour"));
}

// A start() of a flow that does not exist, and a branch on a refusal reason
// no effect gives, are reported with their file and line.
#[test]
fn flows_check_reports_a_missing_flow_and_an_unknown_reason() {
    let dir = copy_of_flows();
    std::fs::write(
        dir.path().join("typo.rhai"),
        "let r = find_company(\"username\", \"x\");\nif r.reason == \"ratelimited\" { start(\"escalte\"); }\n",
    )
    .unwrap();
    let out = frontdesk().args(["flows", "check"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("typo.rhai:2:") && text.contains("\"ratelimited\" is not a reason"), "{text}");
    assert!(text.contains("typo.rhai:2:") && text.contains("start(\"escalte\"): there is no flow"), "{text}");
}

// A flow file that is not UTF-8 is a problem of that file, not the end of
// the check.
#[test]
fn flows_check_names_a_file_that_is_not_utf8_and_goes_on() {
    let dir = copy_of_flows();
    std::fs::write(dir.path().join("latin1.rhai"), b"say(\"caf\xe9\");\n").unwrap();
    std::fs::write(dir.path().join("typo.rhai"), "start(\"nowhere\");\n").unwrap();
    let out = frontdesk().args(["flows", "check"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("latin1.rhai:1:1: not valid UTF-8"), "{text}");
    assert!(text.contains("typo.rhai:1:"), "the check went on: {text}");
}

// A branch on a choice that no option gives (a label reworded on one side,
// a typo) can never run: `flows check` names its file, line and column.
#[test]
fn flows_check_reports_a_switch_arm_no_option_gives() {
    let dir = copy_of_flows();
    let router = dir.path().join("router.rhai");
    let source = std::fs::read_to_string(&router).unwrap();
    let line = source.lines().position(|l| l.trim_start().starts_with("\"create\" =>")).expect("the create arm") + 1;
    std::fs::write(&router, source.replace("\"create\" =>", "\"create_account\" =>")).unwrap();
    let out = frontdesk().args(["flows", "check"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("router.rhai:{line}:5: \"create_account\" is not a value")), "{text}");
}

/// `chat --as who` on a fresh data folder with `input` piped to it: whether
/// it succeeded, what it printed, and what it logged.
fn piped_chat(who: &str, input: &[u8]) -> (bool, String, String) {
    let data = tempfile::tempdir().unwrap();
    piped_chat_in(data.path(), who, input, &[])
}

/// [`piped_chat`] on the data folder `data`, with `env` set.
fn piped_chat_in(data: &std::path::Path, who: &str, input: &[u8], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut child = frontdesk()
        .arg("--data")
        .arg(data)
        .args(["chat", "--as", who])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).expect("chat prints UTF-8, whatever it reads");
    (out.status.success(), text, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn piped_chat_walks_self_help_and_escalate_to_their_end() {
    let (ok, text, errors) = piped_chat("pipe", b"self help articles\n2\nyes\nhi\n4\nFrance\nno\n");
    assert!(ok, "chat failed: {errors}");
    for expected in [
        "Which of these topics is closest to your question?",
        "Selecting or changing the security access model of your account (CTX130127): https://support.citrix.com/article/CTX130127",
        "Glad I could help. Have a good day!",
        "  4. Contact customer service in my region",
        "Customer Service, Europe, Middle East and Africa:",
        "All right. You can reach them any time with the details above.",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn piped_chat_reads_a_line_that_is_not_utf8_and_goes_on() {
    // Latin-1 from an old terminal, then a CRLF line: neither ends the chat.
    let (ok, text, errors) = piped_chat("bytes", b"Gr\xfc\xdfe, self help articles\r\n2\nyes\n");
    assert!(ok, "chat failed: {errors}");
    for expected in ["Which of these topics is closest to your question?", "Glad I could help. Have a good day!"] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}\n{errors}");
    }
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut child = frontdesk()
        .arg("--data")
        .arg(data.path())
        .arg("serve")
        .env("FRONTDESK__HTTP__LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let db = data.path().join("frontdesk.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !db.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("frontdesk stopped"), "{err}");
}

/// An SMTP server that accepts connections and never says a word.
fn a_mute_smtp_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn chat_ends_soon_when_the_smtp_server_does_not_answer_and_the_mail_stays_queued() {
    // It used to wait out the 150 s send time-out on its way out.
    let data = tempfile::tempdir().unwrap();
    let dir = common::repo_path("tests/fixtures/directory");
    let out = frontdesk().arg("--data").arg(data.path()).arg("import").arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let port = a_mute_smtp_server().to_string();
    let smtp = [
        ("FRONTDESK__SMTP__HOST", "127.0.0.1"),
        ("FRONTDESK__SMTP__PORT", &port),
        ("FRONTDESK__SMTP__SECURITY", "plain"),
    ];
    let started = std::time::Instant::now();
    let (ok, text, errors) = piped_chat_in(data.path(), "mute-smtp", b"login\n1\nalee\n1\n1\n", &smtp);
    assert!(ok && text.contains("Your login information is on its way"), "{text}\n{errors}");
    assert!(started.elapsed() < Duration::from_secs(60), "chat took {:?} to end", started.elapsed());
    assert!(errors.contains("still queued"), "the operator is told: {errors}");
    let entries = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = frontdesk::store::Store::open(&frontdesk::store::Store::sqlite_url(data.path()), 1).await.unwrap();
        let entries = store.outbox_entries().await.unwrap();
        store.close().await;
        entries
    });
    assert!(entries.len() == 1 && entries[0].status == "queued", "{entries:?}");
}

#[test]
fn import_then_chat_finds_a_company_by_each_search_kind() {
    let data = tempfile::tempdir().unwrap();
    let out = frontdesk()
        .arg("--data")
        .arg(data.path())
        .arg("import")
        .arg(common::repo_path("tests/fixtures/directory"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    for (who, lines, company) in [
        ("by-username", "login\n1\nalee\n", "Acme Widgets GmbH"),
        ("by-email", "login\n2\nhomer@globex.example\n", "Globex Corporation"),
        ("by-contract", "login\n3\nCTR-2024-0001\nLee\n", "Acme Widgets GmbH"),
        ("by-serial", "login\n4\nwxyz 9999 0000 1111\n", "Globex Corporation"),
        ("by-machine-code", "login\n5\nMC-77AA-19BF\n", "Initech, Ltd."),
    ] {
        let mut child = frontdesk()
            .arg("--data")
            .arg(data.path())
            .args(["chat", "--as", who])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(&format!("I found your company record: {company}")), "{who}:\n{text}");
    }
}

#[test]
fn agents_look_up_read_take_over_write_and_hand_back_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let out = frontdesk().args(["--data", data]).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let fixtures = common::repo_path("tests/fixtures/directory");
    assert_eq!(run(&["import", fixtures.to_str().unwrap()]).0, Some(0));

    let (code, out, _) = run(&["agent", "lookup", "--by", "username", "ALEE", "--agent", "dana"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Acme Widgets GmbH (Org ID ORG-1001") && out.contains("Ann.Lee@acme.example"), "{out}");

    let mut chat = frontdesk()
        .args(["--data", data, "chat", "--as", "ann"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    chat.stdin.take().unwrap().write_all(b"I forgot my password\n").unwrap();
    assert!(chat.wait().unwrap().success());

    let (code, out, _) = run(&["agent", "take-over", "--for", "ann", "--agent", "dana"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("has joined this conversation"), "{out}");
    assert_eq!(run(&["agent", "say", "--for", "ann", "--agent", "dana", "Hello Ann"]).0, Some(0));
    let (_, out, _) = run(&["agent", "transcript", "--for", "ann", "--agent", "dana"]);
    assert!(
        out.contains("handed_off (taken over by agent:dana)") && out.contains("customer: I forgot my password"),
        "{out}"
    );
    assert!(out.contains("agent dana (not delivered yet): Hello Ann"), "{out}");
    let (code, out, _) = run(&["agent", "hand-back", "--for", "ann", "--agent", "dana"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("back with the account assistant"), "{out}");
    let (code, out, _) = run(&["agent", "hand-back", "--for", "ann", "--agent", "dana"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no conversation with the support team"), "{out}");
    let (code, _, err) = run(&["agent", "say", "--for", "a@b.example", "--channel", "email", "--agent", "dana", "hi"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("mail threads"), "{err}");
}

#[test]
fn screening_check_decides_by_the_rules_and_the_sdn_list() {
    let sdn = common::repo_path("tests/fixtures/sdn");
    let check = |args: &[&str]| {
        let out = frontdesk()
            .env("FRONTDESK__SCREENING__SDN_DIR", &sdn)
            .args(["screening", "check"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // The issue's addresses: refused at once, whatever the spelling or script.
    for region in ["Krym", "Республика Крым", "Donezk", "Донецька область"] {
        let out = check(&["--country", "UA", "--region", region, "--city", "Simferopol", "--postal-code", "95000"]);
        assert!(out.starts_with("refused: trade embargo on"), "{region}: {out}");
    }
    let out = check(&["--country", "UA", "--region", "Kyiv", "--city", "Kyiv", "--postal-code", "01001"]);
    assert!(out.starts_with("passed\n"), "{out}");
    let out = check(&["--country", "UA", "--city", "Kyiv"]);
    assert!(out.starts_with("review: possibly in an embargoed region"), "{out}");
    // Denied parties from sdn.csv and its aliases in alt.csv, in any order and case.
    let out = check(&["--country", "DE", "--name", "Dmitry Kovalenko"]);
    assert!(out.starts_with("refused: denied party \"KOVALENKO, Dmitry\" (alt.csv:9001)"), "{out}");
    let out = check(&["--country", "DE", "--name", "Black Sea Grain Trading"]);
    assert!(out.starts_with("refused: denied party \"BLACK SEA GRAIN TRADING LLC\" (sdn.csv:9002)"), "{out}");
    let out = check(&["--country", "DE", "--name", "Acme Widgets GmbH"]);
    assert!(out.starts_with("passed\n"), "{out}");
}

/// THREATS.md names the test that proves each defence: each must exist.
#[test]
fn threats_md_names_only_tests_that_exist() {
    let threats = std::fs::read_to_string(common::repo_path("THREATS.md")).unwrap();
    let mut sources = String::new();
    for dir in ["tests", "tests/discord", "src"] {
        let mut stack = vec![common::repo_path(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() && dir == "src" {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    sources.push_str(&std::fs::read_to_string(&p).unwrap());
                }
            }
        }
    }
    let tests_paragraphs = threats.split("- **").filter(|p| p.starts_with("Tests.**"));
    let name = regex::Regex::new(r"`([a-z0-9_]+|flows/tests/[a-z_]+\.chat)`").unwrap();
    let mut named = 0;
    for paragraph in tests_paragraphs {
        for cap in name.captures_iter(paragraph) {
            let n = &cap[1];
            named += 1;
            if n.ends_with(".chat") {
                assert!(common::repo_path(n).is_file(), "THREATS.md names {n}, which does not exist");
            } else {
                assert!(
                    sources.contains(&format!("fn {n}(")) || sources.contains(&format!("both_backends!({n},")),
                    "THREATS.md names the test {n}, which does not exist"
                );
            }
        }
    }
    assert!(named > 30, "only {named} tests named");
}

#[test]
fn screening_approve_says_when_an_account_is_not_in_review() {
    let data = tempfile::tempdir().unwrap();
    let out = frontdesk()
        .arg("--data")
        .arg(data.path())
        .args(["screening", "approve", "ORG-404", "--agent", "dana"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ORG-404 is not an account in review"));
}

/// The binary run from `dir`, a folder with nothing of the source tree.
fn frontdesk_in(dir: &std::path::Path) -> Command {
    let mut c = frontdesk();
    c.current_dir(dir);
    c
}

const A_CUSTOMER_MAIL: &str = "From: Pat Doe <pat@customer.example>\r\nTo: support@frontdesk.example\r\n\
Subject: I forgot my password\r\nMessage-ID: <any-folder-1@customer.example>\r\n\r\nHello, I cannot log in.\r\n";

// Built-in flows and templates: from an empty folder outside the source
// tree, a chat and a support mail are answered.
#[test]
fn the_binary_runs_from_any_folder_on_its_built_in_flows() {
    let elsewhere = tempfile::tempdir().unwrap();
    let data = elsewhere.path().join("data");
    let mut chat = frontdesk_in(elsewhere.path())
        .arg("--data")
        .arg(&data)
        .args(["chat", "--as", "x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    chat.stdin.take().unwrap().write_all(b"I forgot my password\n").unwrap();
    let out = chat.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("How would you like to find your company record?"), "{text}");

    let mail = elsewhere.path().join("mail.eml");
    std::fs::write(&mail, A_CUSTOMER_MAIL).unwrap();
    let out =
        frontdesk_in(elsewhere.path()).arg("--data").arg(&data).args(["email", "ingest"]).arg(&mail).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.contains("answered"),
        "{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<_> = std::fs::read_dir(data.join("mail/outbox")).unwrap().collect();
    assert_eq!(answers.len(), 1, "the answer was rendered from the built-in templates");
}

// A configured folder that cannot serve stops start-up with what is wrong.
#[test]
fn a_configured_flows_folder_that_cannot_serve_stops_start_up() {
    let elsewhere = tempfile::tempdir().unwrap();
    let empty = elsewhere.path().join("flows");
    std::fs::create_dir(&empty).unwrap();
    for (dir, says) in [(elsewhere.path().join("nowhere"), "is not a folder"), (empty, "holds no router flow")] {
        let out = frontdesk_in(elsewhere.path())
            .env("FRONTDESK__ENGINE__FLOWS_DIR", &dir)
            .arg("--data")
            .arg(elsewhere.path().join("data"))
            .args(["chat", "--as", "x"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("engine.flows_dir") && err.contains(says), "{err}");
    }
    let out = frontdesk_in(elsewhere.path())
        .env("FRONTDESK__MAIL__TEMPLATES_DIR", elsewhere.path())
        .arg("--data")
        .arg(elsewhere.path().join("data"))
        .args(["chat", "--as", "x"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("mail.templates_dir"), "{out:?}");
}

// The built-in set written out is a flows folder and a templates folder
// that serve; a flow edited there to throw makes `email ingest` say so.
#[test]
fn ejected_flows_serve_and_a_failing_flow_fails_email_ingest() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = frontdesk_in(elsewhere.path()).args(["flows", "eject", "custom"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let flows = elsewhere.path().join("custom/flows");
    let templates = elsewhere.path().join("custom/templates/mail");
    assert!(flows.join("router.rhai").is_file() && templates.join("reply.txt").is_file());
    let check = frontdesk_in(elsewhere.path()).args(["flows", "check"]).arg(&flows).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let again = frontdesk_in(elsewhere.path()).args(["flows", "eject", "custom"]).output().unwrap();
    assert!(!again.status.success(), "ejecting twice never overwrites");

    std::fs::write(flows.join("router.rhai"), "say(\"one moment\");\nthrow \"broken on purpose\";\n").unwrap();
    let mail = elsewhere.path().join("mail.eml");
    std::fs::write(&mail, A_CUSTOMER_MAIL).unwrap();
    let out = frontdesk_in(elsewhere.path())
        .env("FRONTDESK__ENGINE__FLOWS_DIR", &flows)
        .env("FRONTDESK__MAIL__TEMPLATES_DIR", &templates)
        .arg("--data")
        .arg(elsewhere.path().join("data"))
        .args(["email", "ingest"])
        .arg(&mail)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(printed.contains("flow failed") && !printed.contains("answered"), "{printed}");
}
