//! The command line: clap definitions, validated first and then resolved
//! into library configuration (the library never sees clap), as ripgrep
//! does. One file per command.

mod assets;
mod bench;
mod common;
mod conn;
mod connect;
mod exec;
mod exit_codes;
mod faults;
mod fdlimit;
pub mod logging;
mod metrics;
mod proxy;
mod relay;
mod relay_udp;
mod scan;
mod serve;
pub mod settings;
mod systemd;
mod tls;
mod wait;
mod ws;

use clap::{Parser, Subcommand};
use netcrab::error::Result;

/// netcrab: serve, connect, relay, proxy, wait for, benchmark and scan TCP, TLS, UDP and Unix-socket services
#[derive(Debug, Parser)]
#[command(name = "netcrab", version, about, after_help = exit_codes::text())]
#[command(propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    /// More logging on stderr (-v debug, -vv trace with timestamps)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format on stderr: text (`netcrab: message`) or json (one object per line: time, level, message and the event's fields)
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: logging::LogFormat,
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
    #[command(after_long_help = common::with_exit_codes(proxy::EXAMPLES))]
    Proxy(proxy::ProxyArgs),
    #[command(after_long_help = common::with_exit_codes(wait::EXAMPLES))]
    Wait(wait::WaitArgs),
    #[command(after_long_help = common::with_exit_codes(bench::EXAMPLES))]
    Bench(bench::BenchArgs),
    #[command(after_long_help = common::with_exit_codes(scan::EXAMPLES))]
    Scan(scan::ScanArgs),
    #[command(after_long_help = assets::COMPLETIONS_EXAMPLES)]
    Completions(assets::CompletionsArgs),
    #[command(hide = true)]
    Man(assets::ManArgs),
}

impl Command {
    /// Whether the command wants a multi-threaded runtime (servers do; a
    /// single client does not).
    pub fn multi_threaded(&self) -> bool {
        matches!(
            self,
            Command::Serve(_)
                | Command::Relay(_)
                | Command::Proxy(_)
                | Command::Bench(_)
                | Command::Scan(_)
        )
    }

    /// Runs the command.
    pub async fn run(&self) -> Result<()> {
        match self {
            Command::Serve(args) => args.run().await,
            Command::Connect(args) => args.run().await,
            Command::Relay(args) => args.run().await,
            Command::Proxy(args) => args.run().await,
            Command::Wait(args) => args.run().await,
            Command::Bench(args) => args.run().await,
            Command::Scan(args) => args.run().await,
            Command::Completions(args) => args.run(),
            Command::Man(args) => args.run(),
        }
    }
}

/// Installs the signal handlers (see [`netcrab::shutdown`]) and returns the
/// token the first SIGINT/SIGTERM cancels. A second signal, at least a
/// second later, ends the process here: the log is flushed (exit runs no
/// destructors) and the status is 130 (SIGINT) or 143 (SIGTERM).
pub fn on_signals() -> Result<tokio_util::sync::CancellationToken> {
    let (token, exit) = netcrab::shutdown::on_signals()?;
    tokio::spawn(async move {
        let status = exit.requested().await;
        tracing::warn!("second signal: exiting now");
        logging::flush();
        std::process::exit(status);
    });
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use proptest::strategy::Strategy;

    /// Every flag of every command that takes a duration, a size or a
    /// count: (command, required positionals, flag).
    fn ranged_flags() -> Vec<(String, Vec<&'static str>, String)> {
        let positionals = |name: &str| match name {
            "connect" | "wait" => vec!["127.0.0.1:1"],
            "relay" => vec!["127.0.0.1:0", "127.0.0.1:1"],
            "scan" => vec!["127.0.0.1", "1"],
            "proxy" => vec!["127.0.0.1:0"],
            _ => vec![],
        };
        let mut flags = Vec::new();
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments() {
                let ranged = arg.get_value_names().is_some_and(|names| {
                    names
                        .iter()
                        .any(|n| ["DURATION", "BYTES", "N", "K"].contains(&n.as_str()))
                });
                if let (true, Some(long)) = (ranged, arg.get_long()) {
                    flags.push((
                        sub.get_name().to_owned(),
                        positionals(sub.get_name()),
                        format!("--{long}"),
                    ));
                }
            }
        }
        flags
    }

    #[test]
    fn the_ranged_flags_are_all_found() {
        let flags = ranged_flags();
        for (cmd, flag) in [
            ("connect", "--wait"),
            ("connect", "--retry-for"),
            ("connect", "--keepalive"),
            ("wait", "--timeout"),
            ("wait", "--attempt-timeout"),
            ("relay", "--retry-for"),
            ("relay", "--max-conns"),
            ("serve", "--max-line"),
            ("serve", "--handshake-timeout"),
            ("proxy", "--handshake-timeout"),
            ("proxy", "--max-header"),
            ("bench", "--size"),
            ("bench", "--connections"),
        ] {
            assert!(
                flags.iter().any(|(c, _, f)| c == cmd && f == flag),
                "{cmd} {flag} not found"
            );
        }
    }

    /// The known panics of issue 8 are usage errors naming the flag.
    #[test]
    fn absurd_values_are_usage_errors_naming_the_flag() {
        for args in [
            &["connect", "127.0.0.1:1", "--wait", "1e20"][..],
            &["connect", "127.0.0.1:1", "--retry-for", "1e19"],
            &["wait", "127.0.0.1:1", "--timeout", "1e19"],
            &["wait", "127.0.0.1:1", "--attempt-timeout", "1e19"],
            &["relay", "127.0.0.1:0", "127.0.0.1:1", "--retry-for", "1e19"],
            &[
                "relay",
                "127.0.0.1:0",
                "127.0.0.1:1",
                "--keepalive",
                "100000s",
            ],
            &["bench", "--size", "18446744073709551615"],
        ] {
            let err = Cli::try_parse_from(std::iter::once("netcrab").chain(args.iter().copied()))
                .expect_err("out of range");
            assert_eq!(err.exit_code(), 2, "{args:?}");
            let flag = args[args.len() - 2];
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
            assert!(err.to_string().contains("out of range"), "{args:?}: {err}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(32))]
        /// Any value given to any ranged flag of any command parses or is
        /// a usage error: never a panic.
        #[test]
        fn no_value_of_a_ranged_flag_panics(
            value in proptest::prop_oneof![
                "\\PC{0,24}",
                proptest::num::f64::ANY.prop_map(|n| n.to_string()),
                proptest::num::u64::ANY.prop_map(|n| format!("{n}k")),
                proptest::num::u128::ANY.prop_map(|n| n.to_string()),
            ]
        ) {
            for (cmd, positionals, flag) in ranged_flags() {
                let mut argv = vec!["netcrab".to_owned(), cmd];
                argv.extend(positionals.iter().map(|s| s.to_string()));
                argv.push(format!("{flag}={value}"));
                if let Err(err) = Cli::try_parse_from(&argv) {
                    proptest::prop_assert_eq!(err.exit_code(), 2, "{:?}: {}", argv, err);
                }
            }
        }
    }
}
