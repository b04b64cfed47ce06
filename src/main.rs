use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tracing_subscriber::EnvFilter;

/// Transparent huge pages off for this process. mimalloc asks for them on
/// its arenas (`madvise`), and a 2 MiB page that one small live object
/// keeps is resident whole and never purged: `serve` idled at 70 MB after a
/// first start, 43 MB with them off (`MIMALLOC_ALLOW_THP=0` showed it). The
/// flag is the process's, so it holds for the arenas mapped before `main`.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it sets a flag of the
    // calling process (inherited by its children).
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[tokio::main]
async fn main() {
    without_transparent_huge_pages();
    let cli = frontdesk::cli::Cli::parse();
    // Logs go to stderr; chat keeps quiet unless asked (RUST_LOG), so its
    // stdout is exactly the conversation.
    let default = match cli.command {
        frontdesk::cli::Command::Serve => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
        .with_writer(std::io::stderr)
        .init();
    let code = match frontdesk::commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
