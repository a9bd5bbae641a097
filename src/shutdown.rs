//! Shutdown on SIGINT/SIGTERM: the first signal cancels a
//! [`CancellationToken`] (servers stop accepting and drain), a second one
//! asks to exit at once ([`ExitRequest`]) — but only when it comes at least
//! [`REPEAT_WINDOW`] after the first. `timeout(1)` and some supervisors
//! signal both the process and its group, so one request can arrive twice
//! within microseconds; such a repeat is the same request, not "exit now".
//!
//! The library never exits the process: what to do on "exit now" is the
//! caller's decision (the `netcrab` binary flushes its log and exits with
//! 130 or 143).

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// A signal that comes within this long of the first one is taken as a
/// repeat of the same request, not as "exit now".
pub const REPEAT_WINDOW: Duration = Duration::from_secs(1);

/// A second signal's request to exit at once, which the caller awaits.
#[derive(Debug)]
pub struct ExitRequest(oneshot::Receiver<i32>);

impl ExitRequest {
    /// Waits for a second signal (at least [`REPEAT_WINDOW`] after the
    /// first) and returns the exit status it calls for: 130 for SIGINT,
    /// 143 for SIGTERM. Never returns if no such signal comes.
    pub async fn requested(self) -> i32 {
        match self.0.await {
            Ok(signo) => 128 + signo,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Installs the signal handlers and returns the token the first signal
/// cancels, and the request a second one makes. Handlers are installed
/// before this returns, so a caller that then announces readiness cannot
/// miss an early signal.
pub fn on_signals() -> Result<(CancellationToken, ExitRequest)> {
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("install SIGINT handler", e))?;
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| Error::io("install SIGTERM handler", e))?;
    let token = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let signo = tokio::select! {
                Some(()) = int.recv() => libc::SIGINT,
                Some(()) = term.recv() => libc::SIGTERM,
                else => break,
            };
            if tx.send(signo).is_err() {
                break;
            }
        }
    });
    let cancel = token.clone();
    let (exit_tx, exit_rx) = oneshot::channel();
    tokio::spawn(async move {
        if let Some(signo) = exit_request(&mut rx, &cancel).await {
            let _ = exit_tx.send(signo);
        }
    });
    Ok((token, ExitRequest(exit_rx)))
}

/// The name of a signal number, for log lines.
fn name(signo: i32) -> &'static str {
    match signo {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// Takes signals from `signals`: the first cancels `cancel`; returns the
/// signal number of the first one after that which comes at least
/// [`REPEAT_WINDOW`] after the first (repeats inside the window are
/// ignored), or `None` when no more signals can come.
async fn exit_request(
    signals: &mut mpsc::UnboundedReceiver<i32>,
    cancel: &CancellationToken,
) -> Option<i32> {
    let first = signals.recv().await?;
    let at = Instant::now();
    tracing::info!(
        "received {}: shutting down (send it again to exit now)",
        name(first)
    );
    cancel.cancel();
    loop {
        let signo = signals.recv().await?;
        if at.elapsed() >= REPEAT_WINDOW {
            return Some(signo);
        }
        tracing::debug!(
            "received {} within {}ms of the first: the same request",
            name(signo),
            REPEAT_WINDOW.as_millis()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_repeat_within_the_window_is_the_same_request() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let decided = tokio::spawn({
            let cancel = cancel.clone();
            async move { exit_request(&mut rx, &cancel).await }
        });
        // timeout(1) signals the process and its group: twice at once.
        tx.send(libc::SIGTERM).unwrap();
        tx.send(libc::SIGTERM).unwrap();
        tokio::time::sleep(REPEAT_WINDOW - Duration::from_millis(10)).await;
        tx.send(libc::SIGINT).unwrap();
        tokio::task::yield_now().await;
        assert!(cancel.is_cancelled());
        assert!(!decided.is_finished(), "a repeat within 1s exited");
        // A second request, after the window: exit with its number.
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(libc::SIGINT).unwrap();
        assert_eq!(decided.await.unwrap(), Some(libc::SIGINT));
    }

    #[tokio::test(start_paused = true)]
    async fn no_second_signal_no_exit() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        tx.send(libc::SIGTERM).unwrap();
        drop(tx);
        assert_eq!(exit_request(&mut rx, &cancel).await, None);
        assert!(cancel.is_cancelled());
    }
}
