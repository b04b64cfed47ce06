//! Every transcript in flows/tests runs under `cargo test` too.

mod common;

use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_transcript_passes() {
    let settings = Arc::new(common::settings());
    let files = frontdesk::transcript::find(&common::repo_path("flows/tests")).unwrap();
    assert!(files.len() >= 6, "transcripts went missing: {files:?}");
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = frontdesk::transcript::run_file(f, settings.clone()).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} transcript(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_transcript_fails_with_file_line_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.chat");
    std::fs::write(&path, "# wrong on purpose\n> hi\n< Good morning!\n").unwrap();
    let err = frontdesk::transcript::run_file(&path, Arc::new(common::settings())).await.unwrap_err();
    assert!(err.contains("wrong.chat:2:"), "{err}");
    assert!(err.contains("-Good morning!"), "{err}");
    assert!(err.contains("+Hello! I'm the My Account assistant."), "{err}");
}
