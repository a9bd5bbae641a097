//! The retry policy (the seed's section 6.2): exponential backoff with full
//! jitter, an attempt cap and an overall deadline.
//!
//! [`RetryPolicy`] is pure: it only computes delays, so its schedule is
//! unit-tested without sockets. [`retry`] drives an async operation with it,
//! retrying only failures whose [`ErrorKind`] says a
//! retry can help, and it is shared by `connect`, `relay`, `wait` and `bench`.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result, fmt_duration};

/// When and how often to retry a failed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; `None` means no cap (the deadline
    /// then bounds the attempts).
    pub max_retries: Option<u32>,
    /// Overall time budget from the first attempt; no new attempt starts
    /// after it, and an attempt in flight at the deadline is abandoned.
    pub deadline: Option<Duration>,
    /// The backoff cap before the first retry; it doubles after each one.
    pub initial_delay: Duration,
    /// The largest backoff cap.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// One attempt, no retries: what `connect` does unless asked.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: Some(0),
            deadline: None,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the delay before retry number `retry` (0-based):
    /// `initial_delay * 2^retry`, capped at `max_delay`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The delay before retry number `retry`: uniform in `[0, cap]` ("full
    /// jitter"), so many clients that failed together do not retry together.
    pub fn delay(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let cap = u64::try_from(self.backoff_cap(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(0..=cap))
    }

    /// Whether another retry is allowed after `retries_done` retries.
    pub fn allows_retry(&self, retries_done: u32) -> bool {
        self.max_retries.is_none_or(|max| retries_done < max)
    }
}

/// Runs `op` until it succeeds, fails in a way a retry cannot fix, or the
/// policy is spent. `op` gets the attempt number (1-based). `what` names the
/// operation in log lines. The returned error says how many attempts were
/// made over how long when there was more than one.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, what: &str, mut op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let deadline = policy.deadline.map(|d| crate::deadline::after(start, d));
    let mut rng = fastrand::Rng::new();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, op(attempt)).await {
                Ok(result) => result,
                Err(_) => Err(Error::new(ErrorKind::Timeout, what.to_owned())
                    .with_detail("timed out (retry deadline reached)")),
            },
            None => op(attempt).await,
        };
        let err = match result {
            Ok(value) => {
                if attempt > 1 {
                    tracing::debug!("{what}: attempt {attempt} succeeded");
                }
                return Ok(value);
            }
            Err(err) => err,
        };
        let give_up = |err: Error| {
            if attempt > 1 {
                err.with_attempts(attempt, start.elapsed())
            } else {
                err
            }
        };
        if !err.kind().is_retryable() || !policy.allows_retry(attempt - 1) {
            return Err(give_up(err));
        }
        let delay = policy.delay(attempt - 1, &mut rng);
        if deadline.is_some_and(|deadline| crate::deadline::from_now(delay) >= deadline) {
            return Err(give_up(err));
        }
        tracing::debug!(
            "attempt {attempt} failed: {err}; retrying in {}",
            fmt_duration(delay)
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn policy(max_retries: Option<u32>, deadline: Option<u64>) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            deadline: deadline.map(Duration::from_millis),
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }

    fn refused() -> Error {
        Error::new(ErrorKind::Refused, "connect to 127.0.0.1:1")
    }

    #[test]
    fn caps_double_up_to_the_maximum() {
        let p = policy(None, None);
        let caps: Vec<u64> = (0..10)
            .map(|r| p.backoff_cap(r).as_millis() as u64)
            .collect();
        assert_eq!(
            caps,
            [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000]
        );
        assert_eq!(p.backoff_cap(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn full_jitter_stays_within_the_cap_and_spreads() {
        let p = policy(None, None);
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<Duration> = (0..1000).map(|_| p.delay(3, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(800)));
        let below_half = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(400))
            .count();
        assert!((350..650).contains(&below_half), "{below_half}");
    }

    #[tokio::test(start_paused = true)]
    async fn huge_durations_do_not_panic() {
        // What an embedding program may pass for "forever".
        let mut p = RetryPolicy {
            max_retries: Some(2),
            deadline: Some(Duration::MAX),
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::MAX,
        };
        let result = retry(&p, "connect", |n| async move {
            if n < 2 { Err(refused()) } else { Ok(n) }
        })
        .await;
        assert_eq!(result.unwrap(), 2);
        // Backoffs of centuries: given up (or slept, saturating), never a panic.
        p.initial_delay = Duration::MAX;
        assert_eq!(p.backoff_cap(40), Duration::MAX);
        let _ = p.delay(40, &mut fastrand::Rng::with_seed(1));
        let result = retry(&p, "connect", |_| async { Err::<(), _>(refused()) }).await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Refused);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success() {
        let calls = Cell::new(0);
        let start = Instant::now();
        let result = retry(&policy(Some(5), None), "connect", |n| {
            calls.set(n);
            async move { if n < 4 { Err(refused()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 4);
        assert_eq!(calls.get(), 4);
        // Three delays with caps 100 + 200 + 400 ms.
        assert!(start.elapsed() <= Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_attempt_cap_and_says_so() {
        let calls = Cell::new(0);
        let err = retry(&policy(Some(2), None), "connect", |n| {
            calls.set(n);
            async { Err::<(), _>(refused()) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.get(), 3);
        assert_eq!(err.kind(), ErrorKind::Refused);
        assert_eq!(err.attempts(), Some(3));
        assert!(err.to_string().contains("after 3 attempts over"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = Cell::new(0);
        let err = retry(&policy(Some(5), None), "connect", |n| {
            calls.set(n);
            async { Err::<(), _>(Error::new(ErrorKind::Resolve, "resolve nope")) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert_eq!(err.kind(), ErrorKind::Resolve);
        assert_eq!(err.attempts(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_unlimited_retries() {
        let start = Instant::now();
        let calls = Cell::new(0);
        let err = retry(&policy(None, Some(5_000)), "connect", |n| {
            calls.set(n);
            async { Err::<(), _>(refused()) }
        })
        .await
        .unwrap_err();
        assert!(start.elapsed() <= Duration::from_secs(5));
        assert!(calls.get() >= 3, "{}", calls.get());
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_cuts_a_hanging_attempt() {
        let start = Instant::now();
        let err = retry(&policy(None, Some(2_000)), "connect", |_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn default_policy_makes_one_attempt() {
        let calls = Cell::new(0);
        let _ = retry(&RetryPolicy::default(), "connect", |n| {
            calls.set(n);
            async { Err::<(), _>(refused()) }
        })
        .await;
        assert_eq!(calls.get(), 1);
    }
}
