//! What the accept loop does after an `accept(2)` error: never spin.
//!
//! A connection that died before we accepted it is the peer's problem: accept
//! again at once. Running out of descriptors or kernel memory is ours: back
//! off (5 ms doubling to 1 s, as Go's `net/http` does), log once per episode,
//! and recover by itself when descriptors are freed.

use std::io;
use std::time::Duration;

use crate::error::fmt_duration;

/// The first backoff delay after a resource-exhaustion error.
pub const MIN_DELAY: Duration = Duration::from_millis(5);
/// The largest backoff delay.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

/// What to do after an accept error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The error concerned only that one connection: accept again now.
    RetryNow,
    /// A resource is exhausted (or the error is unknown): wait this long.
    Sleep(Duration),
}

/// Whether an accept error concerns only the connection being accepted.
pub fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EINTR
                | libc::EPROTO
                | libc::EPERM
                | libc::EAGAIN
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}

/// Backoff state across consecutive accept errors.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    /// The current delay; `None` outside an episode of errors.
    delay: Option<Duration>,
    /// Errors in the current episode, reported when it ends.
    errors: u64,
    /// Total time slept in the current episode.
    slept: Duration,
}

impl AcceptBackoff {
    /// Records an error and says what to do. Logs the first error of an
    /// episode of resource exhaustion, not every one.
    pub fn on_error(&mut self, err: &io::Error) -> Action {
        if is_per_connection(err) {
            tracing::debug!("accept: {err} (connection dropped before accept)");
            return Action::RetryNow;
        }
        self.errors += 1;
        let delay = match self.delay {
            None => {
                tracing::warn!(
                    "accept: {}; backing off (up to {} between tries) until it clears",
                    describe(err),
                    fmt_duration(MAX_DELAY)
                );
                MIN_DELAY
            }
            Some(d) => (d * 2).min(MAX_DELAY),
        };
        self.delay = Some(delay);
        self.slept += delay;
        Action::Sleep(delay)
    }

    /// Records a successful accept, ending an episode if one was running.
    pub fn on_success(&mut self) {
        if self.delay.take().is_some() {
            tracing::info!(
                "accept: recovered after {} errors over {}",
                self.errors,
                fmt_duration(self.slept)
            );
            self.errors = 0;
            self.slept = Duration::ZERO;
        }
    }
}

fn describe(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EMFILE) => "too many open files (process limit)".into(),
        Some(libc::ENFILE) => "too many open files (system limit)".into(),
        Some(libc::ENOBUFS) | Some(libc::ENOMEM) => "out of kernel memory".into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn aborted_connections_are_retried_at_once() {
        let mut b = AcceptBackoff::default();
        assert_eq!(b.on_error(&os(libc::ECONNABORTED)), Action::RetryNow);
        assert_eq!(b.on_error(&os(libc::EINTR)), Action::RetryNow);
    }

    #[test]
    fn exhaustion_backs_off_doubling_to_a_second_and_resets() {
        let mut b = AcceptBackoff::default();
        let delays: Vec<u64> = (0..10)
            .map(|_| match b.on_error(&os(libc::EMFILE)) {
                Action::Sleep(d) => d.as_millis() as u64,
                Action::RetryNow => 0,
            })
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.on_success();
        assert_eq!(b.on_error(&os(libc::ENFILE)), Action::Sleep(MIN_DELAY));
    }
}
