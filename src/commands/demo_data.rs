//! `frontdesk demo-data`: a realistic synthetic directory as CSV files.

use std::path::PathBuf;

use crate::cli::DemoDataArgs;

pub async fn run(data: PathBuf, args: DemoDataArgs) -> anyhow::Result<i32> {
    let out = args.out.unwrap_or_else(|| data.join("demo"));
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (n, out) = tokio::task::spawn_blocking(move || {
        crate::directory::demo::generate(&out, args.companies, args.seed, progress).map(|n| (n, out))
    })
    .await??;
    println!(
        "wrote {} companies, {} contacts, {} contracts, {} licenses to {}",
        n.companies,
        n.contacts,
        n.contracts,
        n.licenses,
        out.display()
    );
    Ok(0)
}
