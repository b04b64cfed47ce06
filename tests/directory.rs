//! Directory import and searches, on SQLite and PostgreSQL.

mod common;

use frontdesk::{
    directory::{
        import::{import_dir, ImportOptions},
        Directory, Found, Search,
    },
    store::Store,
};

fn fixture(name: &str) -> std::path::PathBuf {
    common::repo_path("tests/fixtures").join(name)
}

async fn org(dir: &Directory, search: Search) -> Option<String> {
    match dir.search(&search).await.unwrap() {
        Found::Company { company } => Some(company.org_id.to_string()),
        other => {
            assert_eq!(other, Found::NotFound);
            None
        }
    }
}

both_backends!(import_then_every_search_kind, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let report = import_dir(&store, &fixture("directory"), &ImportOptions::default(), 1).await.unwrap();
    assert!(!report.rejected(), "{:?}", report.files.iter().flat_map(|f| f.bad.clone()).collect::<Vec<_>>());
    assert_eq!(report.rows(), 3 + 5 + 2 + 3);
    let dir = Directory::new(store.clone());

    let s = |v: &str| v.to_string();
    assert_eq!(org(&dir, Search::Username { value: s("  ALee ") }).await.as_deref(), Some("ORG-1001"));
    assert_eq!(org(&dir, Search::Email { value: s("ann.lee@ACME.example") }).await.as_deref(), Some("ORG-1001"));
    assert_eq!(org(&dir, Search::Email { value: s("nobody@acme.example") }).await, None);
    // Contract and administrator's last name must both match.
    let contract = |n: &str, l: &str| Search::Contract { number: s(n), admin_last_name: s(l) };
    assert_eq!(org(&dir, contract("ctr 2024 0002", "simpson")).await.as_deref(), Some("ORG-1002"));
    assert_eq!(org(&dir, contract("CTR-2024-0002", "Lee")).await, None);
    assert_eq!(org(&dir, contract("CTR-2024-0009", "Simpson")).await, None);
    // Serials without dashes, any case.
    assert_eq!(org(&dir, Search::Serial { value: s("abcd 1234 efgh 5678") }).await.as_deref(), Some("ORG-1001"));
    // Machine codes: legacy XP licenses only.
    assert_eq!(org(&dir, Search::MachineCode { value: s("mc77aa19bf") }).await.as_deref(), Some("ORG-1003"));
    assert_eq!(
        dir.search(&Search::MachineCode { value: s("WXYZ-9999-0000-1111") }).await.unwrap(),
        Found::NotLegacy { product: s("Virtual Desktops") }
    );

    let contacts = dir.contacts("ORG-1003").await.unwrap();
    assert_eq!(
        contacts.iter().map(|c| c.username.as_str()).collect::<Vec<_>>(),
        vec!["pgibbons", "mbolton"],
        "admins first"
    );

    // Re-importing updates and never duplicates.
    let again = import_dir(&store, &fixture("directory"), &ImportOptions::default(), 2).await.unwrap();
    assert!(!again.rejected());
    assert_eq!(dir.contacts("ORG-1001").await.unwrap().len(), 2);
    assert_eq!(dir.company("ORG-1003").await.unwrap().unwrap().phone, "+442079460958");
    store.close().await;
});

both_backends!(a_file_with_bad_rows_changes_nothing_unless_skipped, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let dir = Directory::new(store.clone());
    let report = import_dir(&store, &fixture("bad_directory"), &ImportOptions::default(), 1).await.unwrap();
    assert!(report.rejected());
    let bad = &report.files[1].bad;
    let expect = [
        ("contacts.csv:3:", "not a known company"),
        ("contacts.csv:4:", "not an e-mail address"),
        ("contacts.csv:5:", "must be admin or user"),
        ("contacts.csv:6:", "already belongs to another contact"),
        ("contacts.csv:8:", "appears more than once in this import"),
    ];
    assert_eq!(bad.len(), expect.len(), "{bad:?}");
    for ((at, why), line) in expect.iter().zip(bad) {
        assert!(line.contains(at) && line.contains(why), "{line} should say {at} {why}");
    }
    // companies.csv was fine and is kept; contacts.csv changed nothing.
    assert!(dir.company("ORG-1001").await.unwrap().is_some());
    assert!(dir.contacts("ORG-1001").await.unwrap().is_empty());

    let skipped =
        import_dir(&store, &fixture("bad_directory"), &ImportOptions { skip_bad_rows: true, progress: false }, 2)
            .await
            .unwrap();
    assert!(!skipped.rejected());
    assert_eq!(dir.contacts("ORG-1001").await.unwrap().len(), 1);
    assert_eq!(dir.contacts("ORG-1003").await.unwrap().len(), 1);
    store.close().await;
});

both_backends!(a_generated_directory_imports_cleanly_and_is_searchable, |url: String| async move {
    let out = tempfile::tempdir().unwrap();
    let made = frontdesk::directory::demo::generate(out.path(), 120, 11, false).unwrap();
    let store = Store::open(&url, 4).await.unwrap();
    let report = import_dir(&store, out.path(), &ImportOptions::default(), 1).await.unwrap();
    let bad: Vec<String> = report.files.iter().flat_map(|f| f.bad.clone()).collect();
    assert!(bad.is_empty() && !report.rejected(), "{bad:?}");
    assert_eq!(report.imported(), made.rows());

    // Every search kind finds a generated row.
    let dir = Directory::new(store.clone());
    let mut contacts = csv::Reader::from_path(out.path().join("contacts.csv")).unwrap();
    let first = contacts.records().next().unwrap().unwrap();
    assert_eq!(org(&dir, Search::Username { value: first[1].to_uppercase() }).await.as_deref(), Some(&first[0]));
    assert_eq!(org(&dir, Search::Email { value: first[4].to_string() }).await.as_deref(), Some(&first[0]));
    let mut licenses = csv::Reader::from_path(out.path().join("licenses.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = licenses.records().map(|r| r.unwrap()).collect();
    let xp = rows.iter().find(|r| &r[2] == "XP").expect("some legacy XP licenses");
    assert_eq!(org(&dir, Search::MachineCode { value: xp[3].to_lowercase() }).await.as_deref(), Some(&xp[1]));
    let other = rows.iter().find(|r| &r[2] != "XP").unwrap();
    assert_eq!(org(&dir, Search::Serial { value: other[0].replace('-', " ") }).await.as_deref(), Some(&other[1]));
    store.close().await;
});

/// A generated companies.csv of `n` rows with a bad record on line 50 (an
/// invalid UTF-8 byte) and on line 100 (a stray quote opening a field that
/// the next quote, many lines on, would close).
fn damaged_directory(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    frontdesk::directory::demo::generate(dir.path(), n, 7, false).unwrap();
    for other in ["contacts.csv", "contracts.csv", "licenses.csv"] {
        std::fs::remove_file(dir.path().join(other)).unwrap();
    }
    let path = dir.path().join("companies.csv");
    let text = std::fs::read(&path).unwrap();
    let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    lines[49].splice(12..12, [0xff, 0xfe]);
    let at = lines[99].iter().position(|b| *b == b',').unwrap() + 1;
    lines[99].insert(at, b'"');
    // A later quoted field, as a CSV writer makes for a name with a comma.
    let at = lines[120].iter().position(|b| *b == b',').unwrap() + 1;
    lines[120].insert(at, b'"');
    let end = at + lines[120][at..].iter().position(|b| *b == b',').unwrap();
    lines[120].splice(end..end, *b", Inc\"");
    std::fs::write(&path, lines.join(&b'\n')).unwrap();
    dir
}

both_backends!(bad_records_are_reported_and_the_good_ones_around_them_imported, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    let dir = damaged_directory(172);
    let strict = import_dir(&store, dir.path(), &ImportOptions::default(), 1).await.unwrap();
    assert!(strict.rejected());
    assert_eq!(strict.imported(), 0, "a file with bad rows changes nothing by default");

    let lenient = ImportOptions { skip_bad_rows: true, progress: false };
    let report = import_dir(&store, dir.path(), &lenient, 2).await.unwrap();
    let bad = &report.files[0].bad;
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].ends_with("companies.csv:50: not valid UTF-8 (byte 13 of the line)"), "{bad:?}");
    assert!(bad[1].contains("companies.csv:100: a quoted field is not closed on its line"), "{bad:?}");
    assert!(report.files[0].committed);
    assert_eq!((report.rows(), report.imported()), (172, 170));
    let dir_ = Directory::new(store.clone());
    let name = dir_.company("ORG-0000120").await.unwrap().map(|c| c.name);
    assert!(name.as_deref().is_some_and(|n| n.ends_with(", Inc")), "a quoted field with a comma: {name:?}");
    store.close().await;
});

both_backends!(refused_companies_and_disabled_administrators_are_not_found, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    import_dir(&store, &fixture("directory"), &ImportOptions::default(), 1).await.unwrap();
    let dir = Directory::new(store.clone());
    let s = |v: &str| v.to_string();
    let contract = || Search::Contract { number: s("CTR-2024-0002"), admin_last_name: s("Simpson") };
    assert_eq!(org(&dir, contract()).await.as_deref(), Some("ORG-1002"));
    // Initech's screening refused it; Globex's administrator left.
    dir.set_company_status("ORG-1003", "refused", 2).await.unwrap();
    dir.set_contact_status("hsimpson", "disabled", 2).await.unwrap();
    assert_eq!(org(&dir, Search::MachineCode { value: s("MC-77AA-19BF") }).await, None);
    assert_eq!(org(&dir, Search::Username { value: s("pgibbons") }).await, None);
    assert_eq!(org(&dir, Search::Email { value: s("michael@initech.example") }).await, None);
    assert_eq!(org(&dir, contract()).await, None, "the administrator named in the search is disabled");
    // Acme is untouched.
    assert_eq!(org(&dir, Search::Serial { value: s("ABCD-1234-EFGH-5678") }).await.as_deref(), Some("ORG-1001"));
    dir.set_company_status("ORG-1001", "refused", 3).await.unwrap();
    assert_eq!(org(&dir, Search::Serial { value: s("ABCD-1234-EFGH-5678") }).await, None);
    store.close().await;
});

// Addresses and user names are checked against the whole import and what
// was on record before it, however the file falls into chunks: an address
// of a contact already on record is refused for someone else, and a user
// name that came 2,500 rows earlier (another chunk) is a duplicate.
both_backends!(duplicates_are_found_across_chunks_and_against_the_record, |url: String| async move {
    let store = Store::open(&url, 4).await.unwrap();
    import_dir(&store, &fixture("directory"), &ImportOptions::default(), 1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("org_id,username,first_name,last_name,email,phone,role\n");
    csv.push_str("ORG-1001,imposter,Ann,Other,ann.lee@ACME.example,,user\n");
    for i in 0..2500 {
        csv.push_str(&format!("ORG-1001,user{i},U,Ser,user{i}@acme.example,,user\n"));
    }
    csv.push_str("ORG-1001,USER7,U,Again,again@acme.example,,user\n");
    std::fs::write(dir.path().join("contacts.csv"), csv).unwrap();
    let report =
        import_dir(&store, dir.path(), &ImportOptions { skip_bad_rows: true, progress: false }, 2).await.unwrap();
    let bad = &report.files[0].bad;
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("contacts.csv:2:") && bad[0].contains("already belongs to another contact"), "{bad:?}");
    assert!(bad[1].contains("contacts.csv:2503:") && bad[1].contains("appears more than once"), "{bad:?}");
    assert_eq!(report.imported(), 2500);
    let ann = Directory::new(store.clone()).contact_by_email("ann.lee@acme.example").await.unwrap().unwrap();
    assert_eq!(ann.username, "alee", "the address stays with its contact");
    store.close().await;
});

/// Every index of the directory's tables with its definition.
async fn directory_indexes(url: &str) -> std::collections::BTreeMap<String, String> {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name IN ('companies', 'contacts', 'contracts', 'licenses')",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    rows.into_iter().collect()
}

// A first import into an empty directory loads each table with its indexes
// dropped and builds them after; the directory it leaves has exactly the
// indexes the migrations define, still enforcing what they enforce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_import_leaves_the_indexes_the_migrations_define() {
    use frontdesk::store::directory::LATE_INDEXES;
    let db = common::TestDb::sqlite();
    let store = Store::open(&db.url, 4).await.unwrap();
    let migrated = directory_indexes(&db.url).await;
    for (_, name, create) in LATE_INDEXES {
        assert_eq!(migrated.get(*name).map(String::as_str), Some(*create), "{name} as the migrations define it");
    }
    let report = import_dir(&store, &fixture("directory"), &ImportOptions::default(), 1).await.unwrap();
    assert!(!report.rejected());
    assert_eq!(directory_indexes(&db.url).await, migrated);
    // The rebuilt unique index still refuses a second contact with an address.
    let dir = Directory::new(store.clone());
    let ann = dir.contact_by_email("ann.lee@acme.example").await.unwrap().unwrap();
    let twin = frontdesk::store::directory::NewContact { username: "ann2".into(), ..new_contact_like(&ann) };
    assert!(store.record(&[frontdesk::store::Write::Contact(twin)], 3).await.is_err());
    // A second import of the same files is an upsert of a full directory.
    let again = import_dir(&store, &fixture("directory"), &ImportOptions::default(), 2).await.unwrap();
    assert!(!again.rejected());
    assert_eq!(store_count(&db.url, "contacts").await, 5);
    store.close().await;
}

fn new_contact_like(c: &frontdesk::store::directory::Contact) -> frontdesk::store::directory::NewContact {
    frontdesk::store::directory::NewContact {
        org_id: c.org_id.clone(),
        username: c.username.clone(),
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        role: c.role.clone(),
    }
}

async fn store_count(url: &str, table: &str) -> i64 {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query_as::<_, (i64,)>(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut c).await.unwrap().0
}

// A reset token revokes its contact's unused ones, also among the tokens of
// one batch of writes, where only the last of a contact's stays usable.
both_backends!(a_new_reset_token_revokes_the_contacts_unused_ones, |url: String| async move {
    use frontdesk::store::{requests::NewRecoveryToken, Write};
    let store = Store::open(&url, 4).await.unwrap();
    import_dir(&store, &fixture("directory"), &ImportOptions::default(), 1).await.unwrap();
    let ann = store.contact_by_email("ann.lee@acme.example").await.unwrap().unwrap().id;
    let bernd = store.contact_by_email("b.meyer@acme.example").await.unwrap().unwrap().id;
    let token = |hash: &str, contact_id: i64| {
        Write::RecoveryToken(NewRecoveryToken { token_hash: hash.into(), contact_id, expires_at: 1_000 })
    };
    let audit = |_: &frontdesk::store::directory::Contact| {
        Write::agent_audit("test", "t", "recovery_token_redeemed", "contact", serde_json::Value::Null)
    };
    let redeem = |hash: &'static str| {
        let store = store.clone();
        async move { store.redeem_recovery_token(hash, 20, audit).await.unwrap().map(|c| c.id) }
    };
    store.record(&[token("a-old", ann)], 5).await.unwrap();
    store.record(&[token("a1", ann), token("b1", bernd), token("a2", ann)], 10).await.unwrap();
    assert_eq!(redeem("a-old").await, None, "revoked by a later batch");
    assert_eq!(redeem("a1").await, None, "revoked by a later token of the same batch");
    assert_eq!(redeem("a2").await, Some(ann));
    assert_eq!(redeem("b1").await, Some(bernd), "another contact's token is left alone");
    assert_eq!(redeem("a2").await, None, "used once");
    store.close().await;
});
