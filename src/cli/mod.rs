//! The command line: clap definitions, validated first and then resolved
//! into library configuration (the library never sees clap), as ripgrep
//! does. One file per command.

mod bench;
mod common;
mod connect;
pub mod logging;
mod relay;
mod serve;
mod tls;
mod wait;

use clap::{Parser, Subcommand};
use netcrab::error::Result;

use common::EXIT_CODES;

/// netcrab: serve, connect, relay, wait for and benchmark TCP, TLS, UDP and Unix-socket services
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
    #[command(after_long_help = common::with_exit_codes(serve::EXAMPLES))]
    Serve(serve::ServeArgs),
    #[command(after_long_help = common::with_exit_codes(connect::EXAMPLES))]
    Connect(connect::ConnectArgs),
    #[command(after_long_help = common::with_exit_codes(relay::EXAMPLES))]
    Relay(relay::RelayArgs),
    #[command(after_long_help = common::with_exit_codes(wait::EXAMPLES))]
    Wait(wait::WaitArgs),
    #[command(after_long_help = common::with_exit_codes(bench::EXAMPLES))]
    Bench(bench::BenchArgs),
}

impl Command {
    /// Whether the command wants a multi-threaded runtime (servers do; a
    /// single client does not).
    pub fn multi_threaded(&self) -> bool {
        matches!(
            self,
            Command::Serve(_) | Command::Relay(_) | Command::Bench(_)
        )
    }

    /// Runs the command.
    pub async fn run(&self) -> Result<()> {
        match self {
            Command::Serve(args) => args.run().await,
            Command::Connect(args) => args.run().await,
            Command::Relay(args) => args.run().await,
            Command::Wait(args) => args.run().await,
            Command::Bench(args) => args.run().await,
        }
    }
}
