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
//!
//! The schedule is only as good as the generator's punctuality: a request
//! sent late is measured from its due time all the same, so lateness of the
//! generator's own making would show as server latency. Open-loop workers
//! therefore wait for send times with a [`PreciseTimer`] (a timerfd) rather
//! than tokio's millisecond timer.

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

/// A one-shot timer with the kernel's resolution (a `timerfd`, on the
/// runtime's epoll), for the open-loop send times.
///
/// tokio's timer wheel ticks once per millisecond and rounds every deadline
/// up to the next tick, so a request due between two ticks would go out up
/// to a millisecond late, and its latency, counted from the due time,
/// would include that wait. A timerfd armed for the due time wakes the
/// runtime within the timer slack (50 µs by default) instead, at the cost of
/// one `timerfd_settime` per wait and one descriptor per open-loop
/// connection; nothing spins.
///
/// It runs on the real clock: a paused tokio clock (tests) knows nothing of
/// it, so workers use it only when the run asks for it
/// ([`Run::precise_timer`](super::worker::Run::precise_timer)).
#[derive(Debug)]
pub struct PreciseTimer {
    #[cfg(target_os = "linux")]
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    #[cfg(not(target_os = "linux"))]
    never: std::convert::Infallible,
}

#[cfg(target_os = "linux")]
impl PreciseTimer {
    /// A disarmed timer; an error when the system refuses a timerfd (out of
    /// descriptors), and the caller falls back to tokio's timer.
    #[allow(deprecated)] // `AsyncFd::with_interest`: see `connect::zerocopy::register`.
    pub fn new() -> std::io::Result<PreciseTimer> {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // An `OwnedFd` holds its one descriptor until dropped: the safe
        // constructor is sound for it (see `connect::zerocopy::register`).
        let fd = tokio::io::unix::AsyncFd::with_interest(fd, tokio::io::Interest::READABLE)?;
        Ok(PreciseTimer { fd })
    }

    /// Arms the timer to fire once `after` from now (replacing any earlier
    /// setting).
    pub fn arm(&mut self, after: Duration) -> std::io::Result<()> {
        use rustix::time::{Itimerspec, TimerfdTimerFlags, timerfd_settime};
        let value = Itimerspec {
            it_interval: timespec(Duration::ZERO),
            it_value: timespec(arm_delay(after)),
        };
        timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &value)?;
        Ok(())
    }

    /// Completes once the armed time has passed (never, when disarmed).
    /// Cancel-safe: dropping it leaves the timer armed.
    pub async fn fired(&self) -> std::io::Result<()> {
        loop {
            let mut ready = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expirations)?)) {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                // Readiness left over from an expiry that a re-arm reset.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl PreciseTimer {
    /// Only Linux has one: elsewhere workers use tokio's timer.
    pub fn new() -> std::io::Result<PreciseTimer> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    /// Never called: no value exists.
    pub fn arm(&mut self, _after: Duration) -> std::io::Result<()> {
        match self.never {}
    }

    /// Never called: no value exists.
    pub async fn fired(&self) -> std::io::Result<()> {
        match self.never {}
    }
}

/// The delay a timerfd is armed with for a wait of `after`: at least a
/// nanosecond, because a zero `it_value` disarms it instead of firing.
fn arm_delay(after: Duration) -> Duration {
    after.max(Duration::from_nanos(1))
}

#[cfg(target_os = "linux")]
fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos().into(),
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

    #[test]
    fn a_zero_wait_arms_the_timer_instead_of_disarming_it() {
        assert_eq!(arm_delay(Duration::ZERO), Duration::from_nanos(1));
        assert_eq!(
            arm_delay(Duration::from_micros(7)),
            Duration::from_micros(7)
        );
    }

    /// The precise timer runs on the real clock: these check that it fires,
    /// never early (the kernel guarantees that), and bound the test by a
    /// generous timeout; nothing asserts how punctual it is.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_precise_timer_fires_once_its_time_has_passed() {
        let bound = Duration::from_secs(10);
        let mut timer = PreciseTimer::new().expect("timerfd");
        let wait = Duration::from_millis(2);
        let armed = std::time::Instant::now();
        timer.arm(wait).expect("arm");
        let fired = tokio::time::timeout(bound, timer.fired()).await;
        assert!(matches!(fired, Ok(Ok(()))), "{fired:?}");
        assert!(armed.elapsed() >= wait);

        // Re-arming replaces the earlier time, and readiness left over from
        // an expiry nobody read does not make it fire early.
        timer.arm(Duration::ZERO).expect("arm");
        let stale = tokio::time::timeout(bound, timer.fd.readable()).await;
        drop(stale.expect("the expiry is seen").expect("readable"));
        timer.arm(Duration::from_secs(3600)).expect("arm");
        timer.arm(wait).expect("arm");
        let armed = std::time::Instant::now();
        let fired = tokio::time::timeout(bound, timer.fired()).await;
        assert!(matches!(fired, Ok(Ok(()))), "{fired:?}");
        assert!(armed.elapsed() >= wait);
    }
}
