//! The command line: what each command takes. What each does is in
//! [`crate::commands`], one file per command.

use std::path::PathBuf;

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
    /// Benchmarks (build with --release --features bench).
    #[cfg(feature = "bench")]
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
    #[arg(value_parser = crate::domain::OrgId::parse)]
    pub org_id: crate::domain::OrgId,
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
        /// Flows folder (default: engine.flows_dir, or the built-in flows).
        dir: Option<PathBuf>,
    },
    /// Run transcript tests (*.chat) and print a diff for each failure.
    Test {
        /// A transcript file or a folder of them (default: <flows_dir>/tests,
        /// or flows/tests of the source tree for the built-in flows).
        path: Option<PathBuf>,
    },
    /// Write the built-in flows and mail templates to DIR/flows and
    /// DIR/templates/mail, to edit (then set engine.flows_dir and
    /// mail.templates_dir to them).
    Eject {
        /// Where to write them (existing files are never overwritten).
        dir: PathBuf,
    },
}

#[cfg(feature = "bench")]
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
