//! `frontdesk import DIR`: the directory from CSV files; each bad row is
//! reported as `file:line: reason`.

use crate::{
    app::App,
    cli::ImportArgs,
    directory::import::{import_dir, ImportOptions},
};

pub async fn run(app: App, args: ImportArgs) -> anyhow::Result<i32> {
    let options = ImportOptions {
        skip_bad_rows: args.skip_bad_rows,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let report = import_dir(&app.store, &args.dir, &options, app.engine.clock().now_ms()).await;
    app.store.close().await;
    let report = report?;
    for f in &report.files {
        for bad in &f.bad {
            println!("{bad}");
        }
        if let Some(why) = &f.failed {
            println!("{why}");
        }
        let verdict = match (&f.failed, f.committed) {
            (Some(_), _) => "NOT imported (the file could not be read to its end)",
            (None, true) => "imported",
            (None, false) => "NOT imported (fix the rows above, or use --skip-bad-rows)",
        };
        println!(
            "{}: {} rows, {} upserted, {} bad in {:.1}s: {verdict}",
            f.file.display(),
            f.rows,
            f.imported,
            f.bad.len(),
            f.seconds
        );
    }
    println!(
        "{} rows in {:.1}s ({:.0} rows/s)",
        report.rows(),
        report.seconds,
        report.rows() as f64 / report.seconds.max(1e-9)
    );
    Ok(if report.rejected() { 1 } else { 0 })
}
