//! Shutdown on SIGINT/SIGTERM: the first signal cancels a
//! [`CancellationToken`] (servers stop accepting and drain), a second one
//! exits the process at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Installs the signal handlers and returns the token the first signal
/// cancels. Handlers are installed before this returns, so a caller that
/// then announces readiness cannot miss an early signal.
pub fn on_signals() -> Result<CancellationToken> {
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("install SIGINT handler", e))?;
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| Error::io("install SIGTERM handler", e))?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!("received {name}: shutting down (send it again to exit now)");
        cancel.cancel();
        let code = tokio::select! {
            _ = int.recv() => 128 + libc::SIGINT,
            _ = term.recv() => 128 + libc::SIGTERM,
        };
        tracing::warn!("second signal: exiting now");
        std::process::exit(code);
    });
    Ok(token)
}
