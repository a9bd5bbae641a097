//! Deadlines from durations a caller gives. `Instant + Duration` panics
//! when the sum overflows, and durations come from operators and embedding
//! programs (`Duration::MAX` is a natural "never"), so every deadline
//! netcrab computes from a configured duration saturates instead: a huge
//! timeout means a deadline decades away, never a panic.

use std::time::Duration;

use tokio::time::Instant;

/// How far "never" is: a hundred years.
const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `at + d`, saturating at a time a hundred years after `at`.
pub(crate) fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d.min(FAR))
        .or_else(|| at.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(at)
}

/// `Instant::now() + d`, saturating (see [`after`]).
pub(crate) fn from_now(d: Duration) -> Instant {
    after(Instant::now(), d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn huge_durations_saturate() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(after(now, Duration::MAX), now + FAR);
        assert_eq!(after(now, Duration::from_secs(u64::MAX / 2)), now + FAR);
        assert!(from_now(Duration::MAX) > now);
    }
}
