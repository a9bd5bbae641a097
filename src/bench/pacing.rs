//! When requests and connections are sent: the open-loop schedule and the
//! connection-rate gate.
//!
//! Open loop (`--rate R`) puts request `i` of the whole run on a fixed
//! schedule, due at `start + i / R`, and deals the requests to connections
//! round-robin: connection `c` of `n` sends requests `c, c + n, c + 2n, ...`.
//! A request's latency is measured from the time it was *due*, not from the
//! time it was actually sent, so a server stall that holds back the requests
//! behind it shows in the percentiles (the coordinated-omission correction
//! of wrk2). Closed loop has no schedule: each connection sends its next
//! request as soon as it has a free slot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// As fast as replies come: each connection keeps `pipeline` requests
    /// in flight.
    Closed,
    /// This many requests per second in total, on a fixed schedule.
    Open {
        /// Requests per second over all connections.
        rate: f64,
    },
}

/// The time of item `index` on a schedule of `rate` per second from `start`
/// (saturating at a far future for absurdly slow rates).
pub fn due_at(start: Instant, index: u64, rate: f64) -> Instant {
    Duration::try_from_secs_f64(index as f64 / rate)
        .ok()
        .and_then(|d| start.checked_add(d))
        .unwrap_or_else(|| far_future(start))
}

/// A time so far after `from` that nothing waits for it in practice.
pub fn far_future(from: Instant) -> Instant {
    from.checked_add(Duration::from_secs(86400 * 365))
        .unwrap_or(from)
}

/// `at + d`, saturating at [`far_future`] (user-given durations may be huge).
pub fn later(at: Instant, d: Duration) -> Instant {
    let far = far_future(at);
    at.checked_add(d).map_or(far, |t| t.min(far))
}

/// One connection's share of the open-loop schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    rate: f64,
    /// The global index of this connection's next request.
    next: u64,
    /// The number of connections (the stride between this connection's
    /// requests).
    stride: u64,
}

impl Schedule {
    /// The schedule of connection `conn` of `conns` for a run starting at
    /// `start` at `rate` requests per second in total.
    pub fn new(start: Instant, rate: f64, conn: u64, conns: u64) -> Schedule {
        Schedule {
            start,
            rate,
            next: conn,
            stride: conns.max(1),
        }
    }

    /// The global index of the next request.
    pub fn index(&self) -> u64 {
        self.next
    }

    /// When the next request is due.
    pub fn due(&self) -> Instant {
        due_at(self.start, self.next, self.rate)
    }

    /// Moves to this connection's following request.
    pub fn advance(&mut self) {
        self.next += self.stride;
    }
}

/// Paces connection attempts of all workers to `rate` per second
/// (`--connect-rate`): attempt `i` may start at `start + i / rate`.
#[derive(Debug)]
pub struct ConnectGate {
    start: Instant,
    rate: f64,
    next: AtomicU64,
}

impl ConnectGate {
    /// A gate letting `rate` connection attempts per second through.
    pub fn new(start: Instant, rate: f64) -> ConnectGate {
        ConnectGate {
            start,
            rate,
            next: AtomicU64::new(0),
        }
    }

    /// Claims the next slot and returns when it is due.
    pub fn claim(&self) -> Instant {
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        due_at(self.start, slot, self.rate)
    }

    /// Waits for this caller's slot.
    pub async fn wait(&self) {
        tokio::time::sleep_until(self.claim()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_dealt_round_robin_on_a_fixed_schedule() {
        let start = Instant::now();
        // 1000 req/s over 4 connections: connection 1 sends 1, 5, 9, ...
        let mut s = Schedule::new(start, 1000.0, 1, 4);
        let mut dues = Vec::new();
        for _ in 0..4 {
            dues.push((s.index(), s.due() - start));
            s.advance();
        }
        assert_eq!(
            dues,
            vec![
                (1, Duration::from_millis(1)),
                (5, Duration::from_millis(5)),
                (9, Duration::from_millis(9)),
                (13, Duration::from_millis(13)),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_schedule_does_not_slip_when_a_sender_is_late() {
        // A sender that falls behind (a stalled server) does not move the
        // schedule: the due times stay fixed and the backlog is due at once.
        let start = Instant::now();
        let mut s = Schedule::new(start, 100.0, 0, 1);
        tokio::time::sleep(Duration::from_millis(105)).await;
        let mut overdue = 0;
        while s.due() <= Instant::now() {
            overdue += 1;
            s.advance();
        }
        assert_eq!(
            overdue, 11,
            "requests 0..=10 are due within 105 ms at 100/s"
        );
        assert_eq!(s.due() - start, Duration::from_millis(110));
    }

    #[tokio::test(start_paused = true)]
    async fn huge_durations_and_tiny_rates_saturate_instead_of_panicking() {
        let now = Instant::now();
        assert!(due_at(now, u64::MAX, 1e-300) > now);
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_connect_gate_spaces_attempts() {
        let start = Instant::now();
        let gate = ConnectGate::new(start, 10.0);
        let mut at = Vec::new();
        for _ in 0..3 {
            gate.wait().await;
            at.push(Instant::now() - start);
        }
        assert_eq!(
            at,
            vec![
                Duration::ZERO,
                Duration::from_millis(100),
                Duration::from_millis(200)
            ]
        );
    }
}
