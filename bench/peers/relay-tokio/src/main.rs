//! relay-tokio: the leanest TCP relay one writes on tokio, the floor
//! netcrab's relay is measured against (bench/relay-rr.sh, `tokio-min`).
//! A floor, not a product: no timeouts, no limits, no logging per
//! connection.
//!
//! ```text
//! relay-tokio LISTEN IP:PORT [--port-file PATH]
//! ```
//!
//! The multi-thread runtime (workers from TOKIO_WORKER_THREADS, tokio's
//! default otherwise), an accept loop spawned as a task, a task per connection that connects
//! to UPSTREAM, sets TCP_NODELAY on both sockets, runs
//! `tokio::io::copy_bidirectional` (which passes a half-close on: an end of
//! stream from one side becomes a `shutdown(SHUT_WR)` towards the other,
//! and the task ends when both directions have ended) and drops both.
//!
//! Once listening it writes the bound port and a newline to PATH (with
//! --port-file; a temporary file then renamed, so a reader never sees a
//! partial number).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: relay-tokio LISTEN IP:PORT [--port-file PATH]";

#[tokio::main]
async fn main() -> ExitCode {
    let mut addrs = Vec::new();
    let mut port_file: Option<PathBuf> = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port-file" => match it.next() {
                Some(path) => port_file = Some(PathBuf::from(path)),
                None => {
                    eprintln!("relay-tokio: --port-file needs a path\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => addrs.push(arg),
        }
    }
    let [listen, upstream] = <[String; 2]>::try_from(addrs).unwrap_or_else(|_| {
        eprintln!("relay-tokio: want LISTEN and UPSTREAM\n{USAGE}");
        std::process::exit(2);
    });
    // Parsed once: `TcpStream::connect(&str)` would resolve the name on
    // tokio's blocking thread pool for every connection.
    let upstream: SocketAddr = match upstream.parse() {
        Ok(addr) => addr,
        Err(_) => {
            eprintln!("relay-tokio: UPSTREAM must be IP:PORT, not {upstream:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("relay-tokio: listen {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(local) => local,
        Err(e) => {
            eprintln!("relay-tokio: local address: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &port_file
        && let Err(e) = write_port_file(path, local.port())
    {
        eprintln!("relay-tokio: port file {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("listening on {local}");

    // The accept loop is a task too, so it runs on a worker beside the
    // connections (as netcrab's does). Left in `main`'s `block_on` it would
    // run on the main thread, and every spawn would wake the worker through
    // a futex and the driver's eventfd.
    let _ = tokio::spawn(accept_loop(listener, upstream)).await;
    ExitCode::FAILURE
}

/// Accepts forever, a task per connection.
async fn accept_loop(listener: TcpListener, upstream: SocketAddr) {
    loop {
        // Per-connection accept errors (ECONNABORTED, EMFILE, ...): try again.
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(relay(client, upstream));
    }
}

/// Relays one connection to `upstream` until both directions have ended;
/// any error drops both sockets.
async fn relay(mut client: TcpStream, upstream: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
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
