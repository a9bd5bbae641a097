//! The command line: clap definitions, validated first and then resolved
//! into library configuration (the library never sees clap), as ripgrep
//! does. One file per command.

mod bench;
mod common;
mod connect;
pub mod logging;
mod serve;

use clap::{Parser, Subcommand};
use netcrab::error::Result;

use common::EXIT_CODES;

/// netcrab: serve, connect, relay, wait for and benchmark TCP services
#[derive(Debug, Parser)]
#[command(name = "netcrab", version, about, after_help = EXIT_CODES)]
#[command(propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    /// More logging on stderr (-v debug, -vv trace with timestamps)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(after_long_help = EXIT_CODES)]
    Serve(serve::ServeArgs),
    #[command(after_long_help = EXIT_CODES)]
    Connect(connect::ConnectArgs),
    #[command(after_long_help = EXIT_CODES)]
    Bench(bench::BenchArgs),
}

impl Command {
    /// Whether the command wants a multi-threaded runtime (servers do; a
    /// single client does not).
    pub fn multi_threaded(&self) -> bool {
        matches!(self, Command::Serve(_) | Command::Bench(_))
    }

    /// Runs the command.
    pub async fn run(&self) -> Result<()> {
        match self {
            Command::Serve(args) => args.run().await,
            Command::Connect(args) => args.run().await,
            Command::Bench(args) => args.run().await,
        }
    }
}
