//! The `netcrab` binary: parse the command line, run the command on a tokio
//! runtime, and map its outcome to an exit code, in one place.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than the system allocator: see Cargo.toml for why.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // The library's messages name settings as flags (parsing may already
    // produce some).
    netcrab::settings::name_settings(cli::settings::flag);
    let args = cli::Cli::parse();
    cli::logging::init(args.verbose, args.quiet, args.log_format);
    let runtime = if args.command.multi_threaded() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("netcrab: error: start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(args.command.run());
    // A pending read of stdin must not hold the process open.
    runtime.shutdown_background();
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::from(err.exit_code())
        }
    };
    // Logging goes through a queue: write out what is left before exiting.
    cli::logging::flush();
    code
}
