//! The command line.

use std::{path::PathBuf, sync::Arc};

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "frontdesk",
    version,
    about = "Self-service account assistant: the My Account procedures as durable chat and e-mail flows"
)]
pub struct Cli {
    /// Data folder: the SQLite database and the mail spool live here.
    #[arg(long, global = true, default_value = "data", env = "FRONTDESK_DATA")]
    pub data: PathBuf,
    /// Configuration file, layered over the embedded defaults (see config/default.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Talk to frontdesk in this terminal, through the real engine and store.
    Chat(ChatArgs),
    /// Run the configured channels and background work until SIGINT/SIGTERM.
    Serve,
    /// Check and test the flows.
    #[command(subcommand)]
    Flows(FlowsCommand),
    /// Import the directory from CSV files (companies.csv, contacts.csv,
    /// contracts.csv, licenses.csv); re-importing updates, never duplicates.
    Import(ImportArgs),
    /// Approve or decline a request to be added as a contact (agents, or the
    /// page behind the link administrators are mailed).
    #[command(subcommand)]
    ContactRequest(ContactRequestCommand),
    /// Commands for support agents.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Write a realistic synthetic directory as CSV files for `import`.
    DemoData(DemoDataArgs),
    /// The e-mail channel.
    #[command(subcommand)]
    Email(EmailCommand),
    /// Trade-embargo screening, as new accounts get it.
    #[command(subcommand)]
    Screening(ScreeningCommand),
    /// Benchmarks (build with --release).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
pub enum ScreeningCommand {
    /// What screening decides for an address and names: prints `passed`,
    /// `review` or `refused` with the rule that decided, at sign-up and at
    /// the full review.
    Check(crate::account::screening::CheckArgs),
    /// Approve an account the review left to a person (or a possible
    /// duplicate): it becomes active and its administrator is told by mail.
    Approve(ReviewArgs),
    /// Refuse an account in review: its administrator is told by mail.
    Refuse(ReviewArgs),
}

#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// The account's Org ID.
    pub org_id: String,
    /// Who decides (in the audit log).
    #[arg(long)]
    pub agent: String,
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// The sender identity; the same identity continues the same conversation.
    #[arg(long = "as", value_name = "IDENTITY")]
    pub identity: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Folder holding the CSV files.
    pub dir: PathBuf,
    /// Import the good rows of a file that has bad ones (default: a file
    /// with bad rows changes nothing).
    #[arg(long)]
    pub skip_bad_rows: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Start a flow for a customer; it continues in the customer's
    /// conversation, and everything it does is audited as started by you.
    Start {
        /// The flow (a file name in the flows folder, e.g. find_company).
        flow: String,
        /// The customer, as their channel identifies them.
        #[arg(long = "for", value_name = "IDENTITY")]
        customer: String,
        /// The agent starting it.
        #[arg(long)]
        agent: String,
        /// The customer's channel.
        #[arg(long, default_value = crate::channels::terminal::CHANNEL)]
        channel: String,
    },
    /// Look a company up in the directory, with its contacts (unmasked).
    Lookup {
        /// What the value is.
        #[arg(long, value_parser = ["username", "email", "contract", "serial", "machine_code", "org_id"])]
        by: String,
        value: String,
        /// The administrator's last name (contract lookups).
        #[arg(long)]
        last_name: Option<String>,
        /// The agent looking (recorded in the audit log).
        #[arg(long)]
        agent: String,
    },
    /// Show a customer's latest conversation: flow, status, every message.
    Transcript(CustomerArgs),
    /// Take a customer's conversation over: the assistant stays quiet in it.
    TakeOver(CustomerArgs),
    /// Write to a customer in their conversation (takes it over if needed).
    Say {
        #[command(flatten)]
        customer: CustomerArgs,
        /// What to tell them.
        text: String,
    },
    /// Give a conversation back to the assistant.
    HandBack(CustomerArgs),
}

/// A customer, as their channel identifies them, and the agent acting.
#[derive(Args, Debug)]
pub struct CustomerArgs {
    /// The customer (a terminal identity, a Discord user id, an e-mail address).
    #[arg(long = "for", value_name = "IDENTITY")]
    pub customer: String,
    /// The agent acting (recorded in the audit log).
    #[arg(long)]
    pub agent: String,
    /// The customer's channel.
    #[arg(long, default_value = crate::channels::terminal::CHANNEL)]
    pub channel: String,
}

#[derive(Subcommand, Debug)]
pub enum EmailCommand {
    /// Handle raw RFC 5322 mails from files exactly as if fetched over IMAP
    /// (same dedupe, loop safety and routing); print what became of each.
    /// Without an SMTP server, answers are written to <data>/mail/outbox/.
    Ingest {
        /// The .eml files, handled in the order given.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContactRequestCommand {
    /// Add the requester as a contact and welcome them by mail.
    Approve(DecideArgs),
    /// Tell the requester politely that the request was declined.
    Decline(DecideArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["token", "agent"])))]
pub struct DecideArgs {
    /// The request number (CR-12345678), with --agent.
    #[arg(requires = "agent")]
    pub number: Option<String>,
    /// The agent deciding (recorded in the audit log).
    #[arg(long, requires = "number")]
    pub agent: Option<String>,
    /// The single-use token from an administrator's link.
    #[arg(long, conflicts_with = "agent")]
    pub token: Option<String>,
}

#[derive(Args, Debug)]
pub struct DemoDataArgs {
    /// How many companies (each with 2-5 contacts, contracts and licenses).
    #[arg(long, default_value_t = 1000)]
    pub companies: u64,
    /// Random seed: the same seed writes the same directory.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output folder (default: <data>/demo).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum FlowsCommand {
    /// Compile every flow; print file:line:col: error lines and fail on any.
    Check {
        /// Flows folder (default: engine.flows_dir).
        dir: Option<PathBuf>,
    },
    /// Run transcript tests (*.chat) and print a diff for each failure.
    Test {
        /// A transcript file or a folder of them (default: <flows_dir>/tests).
        path: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Turns/s and latency of the engine over many concurrent conversations,
    /// against the floor of bare store writes.
    Engine(crate::bench::EngineBenchArgs),
    /// Import rows/s and search latency on a synthetic directory.
    Directory(crate::bench::directory::DirectoryBenchArgs),
    /// Mails/s from a private Dovecot mailbox to queued answers, and parsing
    /// alone, against the IMAP fetch floor (needs root and dovecot-imapd).
    Email(crate::bench::email::EmailBenchArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = match crate::config::Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprint!("{e}");
            return Ok(2);
        }
    };
    match cli.command {
        Command::Chat(args) => {
            let app = crate::app::App::open(settings, cli.data).await?;
            let who = args.identity.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "terminal".to_string());
            // Mail queued by the conversation goes out while it runs, and
            // whatever is left when it ends goes out before the process exits.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let workers = app.spawn_mail_and_followups(
                std::time::Duration::from_millis(200),
                std::time::Duration::from_secs(1),
                &stopped,
            )?;
            let result = crate::channels::terminal::chat(&app.engine, &who).await;
            let _ = stop.send(true);
            for w in workers {
                let _ = w.await;
            }
            app.store.flush().await;
            let flushed = app.outbox()?.run_once(app.engine.clock().now_ms()).await;
            app.store.close().await;
            flushed?;
            result.map(|_| 0)
        }
        Command::Serve => {
            let app = crate::app::App::open(settings, cli.data).await?;
            crate::serve::serve(app).await.map(|_| 0)
        }
        Command::Flows(FlowsCommand::Check { dir }) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&settings.engine.flows_dir));
            let engine = crate::engine::Engine::script_engine_for(&settings, &crate::app::declared_effects());
            let problems = crate::flowcheck::check_dir(&engine, &dir, &settings.engine.router_flow)?;
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                println!("flows ok: {}", dir.display());
                Ok(0)
            } else {
                eprintln!("{} problem(s)", problems.len());
                Ok(1)
            }
        }
        Command::Flows(FlowsCommand::Test { path }) => {
            let path = path.unwrap_or_else(|| PathBuf::from(&settings.engine.flows_dir).join("tests"));
            let files = crate::transcript::find(&path)?;
            if files.is_empty() {
                eprintln!("no transcripts (*.chat) found at {}", path.display());
                return Ok(1);
            }
            let settings = Arc::new(settings);
            let mut failed = 0;
            for f in &files {
                match crate::transcript::run_file(f, settings.clone()).await {
                    Ok(()) => println!("ok      {}", f.display()),
                    Err(e) => {
                        failed += 1;
                        println!("FAILED  {}\n{e}", f.display());
                    }
                }
            }
            println!("transcripts: {} passed, {failed} failed", files.len() - failed);
            Ok(if failed == 0 { 0 } else { 1 })
        }
        Command::Screening(ScreeningCommand::Check(args)) => crate::account::screening::check(&settings, &args),
        Command::Screening(decision @ (ScreeningCommand::Approve(_) | ScreeningCommand::Refuse(_))) => {
            let (approve, args) = match decision {
                ScreeningCommand::Approve(a) => (true, a),
                ScreeningCommand::Refuse(a) => (false, a),
                ScreeningCommand::Check(_) => unreachable!("matched above"),
            };
            let app = crate::app::App::open(settings, cli.data).await?;
            let now = app.engine.clock().now_ms();
            let decided =
                crate::account::followup::decide(&app.store, &app.settings, &args.org_id, approve, &args.agent, now)
                    .await;
            app.store.close().await;
            if decided? {
                println!(
                    "{}: {}; the administrator is told by mail",
                    args.org_id,
                    if approve { "approved" } else { "refused" }
                );
                Ok(0)
            } else {
                eprintln!("{} is not an account in review", args.org_id);
                Ok(1)
            }
        }
        Command::Agent(command) => {
            let app = crate::app::App::open(settings, cli.data).await?;
            let code = crate::agent::cli::run(&app, command).await;
            app.store.close().await;
            code
        }
        Command::ContactRequest(command) => {
            let (approve, args) = match command {
                ContactRequestCommand::Approve(a) => (true, a),
                ContactRequestCommand::Decline(a) => (false, a),
            };
            let by = match (args.token, args.agent, args.number) {
                (Some(token), _, _) => crate::account::requests::Decider::Link { token },
                (None, Some(name), Some(number)) => crate::account::requests::Decider::Agent { name, number },
                _ => unreachable!("clap requires --token or --agent with a number"),
            };
            let app = crate::app::App::open(settings, cli.data).await?;
            let decided =
                crate::account::requests::decide(&app.store, &app.settings, by, approve, app.engine.clock().now_ms())
                    .await;
            let code = match decided {
                Ok(number) => {
                    println!(
                        "{number}: {}",
                        if approve {
                            "approved; the contact is created and welcomed by mail"
                        } else {
                            "declined; the requester is told by mail"
                        }
                    );
                    // Deliver the mail now rather than at the next `serve`.
                    app.outbox()?.run_once(app.engine.clock().now_ms()).await?;
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            };
            app.store.close().await;
            Ok(code)
        }
        Command::DemoData(args) => {
            let out = args.out.unwrap_or_else(|| cli.data.join("demo"));
            let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let n = tokio::task::spawn_blocking(move || {
                crate::directory::demo::generate(&out, args.companies, args.seed, progress).map(|n| (n, out))
            })
            .await??;
            println!(
                "wrote {} companies, {} contacts, {} contracts, {} licenses to {}",
                n.0.companies,
                n.0.contacts,
                n.0.contracts,
                n.0.licenses,
                n.1.display()
            );
            Ok(0)
        }
        Command::Import(args) => {
            let app = crate::app::App::open(settings, cli.data).await?;
            let options = crate::directory::import::ImportOptions {
                skip_bad_rows: args.skip_bad_rows,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let report =
                crate::directory::import::import_dir(&app.store, &args.dir, &options, app.engine.clock().now_ms())
                    .await;
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
                    "{}: {} rows, {} upserted, {} bad: {verdict}",
                    f.file.display(),
                    f.rows,
                    f.imported,
                    f.bad.len()
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
        Command::Email(EmailCommand::Ingest { files }) => {
            let app = crate::app::App::open(settings, cli.data).await?;
            let code = crate::channels::email::ingest::run(&app, &files).await;
            app.store.close().await;
            code
        }
        Command::Bench(BenchCommand::Email(args)) => crate::bench::email::run(settings, args).await.map(|_| 0),
        Command::Bench(BenchCommand::Directory(args)) => crate::bench::directory::run(settings, args).await.map(|_| 0),
        Command::Bench(BenchCommand::Engine(args)) => crate::bench::engine(settings, cli.data, args).await.map(|_| 0),
    }
}
