//! Shutdown on SIGINT/SIGTERM: the first signal cancels a
//! [`CancellationToken`] (servers stop accepting and drain), a second one
//! exits the process at once — but only when it comes at least
//! [`REPEAT_WINDOW`] after the first. `timeout(1)` and some supervisors
//! signal both the process and its group, so one request can arrive twice
//! within microseconds; such a repeat is the same request, not "exit now".

use std::sync::OnceLock;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// A signal that comes within this long of the first one is taken as a
/// repeat of the same request, not as "exit now".
pub const REPEAT_WINDOW: Duration = Duration::from_secs(1);

/// What runs just before a second signal exits the process.
static BEFORE_EXIT: OnceLock<fn()> = OnceLock::new();

/// Sets a function to run just before a second signal exits the process
/// (`std::process::exit` runs no destructors): the binary flushes its log
/// writer there, so the last lines reach stderr. Only the first call counts.
pub fn set_before_exit(hook: fn()) {
    let _ = BEFORE_EXIT.set(hook);
}

/// Installs the signal handlers and returns the token the first signal
/// cancels. Handlers are installed before this returns, so a caller that
/// then announces readiness cannot miss an early signal. A second signal at
/// least [`REPEAT_WINDOW`] after the first exits the process with 130
/// (SIGINT) or 143 (SIGTERM).
pub fn on_signals() -> Result<CancellationToken> {
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
    tokio::spawn(async move {
        if let Some(signo) = exit_request(&mut rx, &cancel).await {
            tracing::warn!("second signal: exiting now");
            if let Some(hook) = BEFORE_EXIT.get() {
                hook();
            }
            std::process::exit(128 + signo);
        }
    });
    Ok(token)
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
