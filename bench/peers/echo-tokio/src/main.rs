//! echo-tokio: the tokio peer that netcrab's benchmarks compare against — a
//! plain task-per-connection TCP echo server written the way a tokio user
//! would write it: `TcpListener::bind`, an accept loop, `tokio::spawn` per
//! connection, one 16 KiB buffer per connection, `read` then `write_all`
//! until EOF, on the default multi-thread runtime.
//!
//! Same command line as the Go peer (bench/peers/echo-go), so
//! bench/compare.sh drives both identically:
//!
//! ```text
//! echo-tokio [-addr 127.0.0.1:0] [-port-file PATH] [-mode echo|discard]
//! ```
//!
//! Once listening it writes the bound port and a newline to PATH (with
//! -port-file; a temporary file then renamed, so a reader never sees a
//! partial number) and prints "listening on ADDR" to stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The per-connection buffer: 16 KiB, held for the connection's life.
const BUF_SIZE: usize = 16 * 1024;

const USAGE: &str = "usage: echo-tokio [-addr 127.0.0.1:0] [-port-file PATH] [-mode echo|discard]";

/// What each connection does with what it reads.
#[derive(Clone, Copy)]
enum Mode {
    /// Write back everything read.
    Echo,
    /// Read and drop.
    Discard,
}

/// The parsed command line.
struct Args {
    addr: String,
    port_file: Option<PathBuf>,
    mode: Mode,
}

/// Parses Go-flag-style arguments: `-name value`, `-name=value`, one or two dashes.
fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:0".to_string(),
        port_file: None,
        mode: Mode::Echo,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let flag = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'));
        let Some(flag) = flag else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        if matches!(flag, "h" | "help") {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, value.to_string()),
            None => match it.next() {
                Some(value) => (flag, value),
                None => return Err(format!("flag needs an argument: -{flag}")),
            },
        };
        match name {
            "addr" => args.addr = value,
            "port-file" => args.port_file = Some(PathBuf::from(value)),
            "mode" => {
                args.mode = match value.as_str() {
                    "echo" => Mode::Echo,
                    "discard" => Mode::Discard,
                    _ => return Err(format!("unknown -mode {value:?} (want echo or discard)")),
                }
            }
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("echo-tokio: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("echo-tokio: listen {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(local) => local,
        Err(e) => {
            eprintln!("echo-tokio: local address: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.port_file
        && let Err(e) = write_port_file(path, local.port())
    {
        eprintln!("echo-tokio: port file {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("listening on {local}");

    loop {
        // Errors here are per-connection (ECONNABORTED, ...) or resource
        // limits (EMFILE); a plain server logs them and keeps accepting.
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("echo-tokio: accept: {e}");
                continue;
            }
        };
        let mode = args.mode;
        tokio::spawn(async move {
            if let Err(e) = handle(stream, mode).await {
                eprintln!("echo-tokio: {peer}: {e}");
            }
        });
    }
}

/// Serves one connection until EOF: echoes or discards everything it reads.
async fn handle(mut stream: TcpStream, mode: Mode) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if let Mode::Echo = mode {
            stream.write_all(&buf[..n]).await?;
        }
    }
}

/// Writes "PORT\n" to `path` atomically: a temporary file in the same
/// directory, then a rename.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".port-{}", std::process::id()));
    let result =
        std::fs::write(&tmp, format!("{port}\n")).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
