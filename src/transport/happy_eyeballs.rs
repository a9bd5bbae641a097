//! Happy Eyeballs (RFC 8305) for names with several addresses: IPv6 first,
//! families interleaved, a new attempt every 250 ms while earlier ones are
//! still pending (or at once when one fails), the first success wins and
//! the others are dropped.
//!
//! The address ordering ([`interleave`]) is pure; the race ([`race`]) takes
//! the connect operation as a closure, so both are tested without sockets
//! (the race with tokio's paused clock).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

/// RFC 8305's recommended "Connection Attempt Delay": how long an attempt
/// runs alone before the next address is tried alongside it.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Orders addresses for connecting: IPv6 first, then alternating between
/// the families, keeping the resolver's order within each family and
/// dropping duplicates (RFC 8305, section 4, with a "First Address Family
/// Count" of 1).
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut v6 = Vec::new();
    let mut v4 = Vec::new();
    for addr in addrs {
        let family = if addr.is_ipv6() { &mut v6 } else { &mut v4 };
        if !family.contains(addr) {
            family.push(*addr);
        }
    }
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut v6, mut v4) = (v6.into_iter(), v4.into_iter());
    loop {
        match (v6.next(), v4.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Races connection attempts to `addrs` (already ordered): starts the first,
/// and the next one whenever the previous has run for `delay` without
/// finishing or as soon as an attempt fails. Returns the first success and
/// drops (aborts) every other attempt. When all fail, returns each address
/// with its error, in the order the attempts were started.
pub async fn race<T, E, F, Fut>(
    addrs: &[SocketAddr],
    delay: Duration,
    mut connect: F,
) -> Result<T, Vec<(SocketAddr, E)>>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let mut pending = addrs.iter().copied().enumerate();
    let mut attempts = JoinSet::new();
    let mut errors: Vec<(usize, SocketAddr, E)> = Vec::new();
    let mut start_next = |attempts: &mut JoinSet<_>| match pending.next() {
        Some((i, addr)) => {
            tracing::trace!("connect: trying {addr}");
            let attempt = connect(addr);
            attempts.spawn(async move { (i, addr, attempt.await) });
            true
        }
        None => false,
    };
    let mut more = start_next(&mut attempts);
    let timer = tokio::time::sleep(delay);
    tokio::pin!(timer);
    while more || !attempts.is_empty() {
        tokio::select! {
            Some(joined) = attempts.join_next() => {
                match joined {
                    Ok((_, _, Ok(conn))) => return Ok(conn),
                    Ok((i, addr, Err(err))) => errors.push((i, addr, err)),
                    // A panicked attempt counts as a failure without an error
                    // to show; the others go on.
                    Err(_) => {}
                }
                if more {
                    more = start_next(&mut attempts);
                    timer.as_mut().reset(Instant::now() + delay);
                }
            }
            _ = &mut timer, if more => {
                more = start_next(&mut attempts);
                timer.as_mut().reset(Instant::now() + delay);
            }
        }
    }
    errors.sort_by_key(|(i, _, _)| *i);
    Err(errors.into_iter().map(|(_, a, e)| (a, e)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_first_then_alternating() {
        let input = [
            addr("127.0.0.1:1"),
            addr("10.0.0.1:1"),
            addr("10.0.0.2:1"),
            addr("[::1]:1"),
            addr("[fd00::1]:1"),
        ];
        assert_eq!(
            interleave(&input),
            [
                addr("[::1]:1"),
                addr("127.0.0.1:1"),
                addr("[fd00::1]:1"),
                addr("10.0.0.1:1"),
                addr("10.0.0.2:1"),
            ]
        );
    }

    #[test]
    fn one_family_keeps_its_order_and_duplicates_go() {
        let input = [addr("10.0.0.2:1"), addr("10.0.0.1:1"), addr("10.0.0.2:1")];
        assert_eq!(interleave(&input), [addr("10.0.0.2:1"), addr("10.0.0.1:1")]);
        assert_eq!(interleave(&[]), Vec::<SocketAddr>::new());
    }

    /// A scripted attempt: fails or succeeds after a delay.
    #[derive(Clone, Copy)]
    enum Script {
        Ok(u64),
        Fail(u64),
    }

    /// Runs a race where address `i` follows `scripts[i]`, returning the
    /// winner (or the failed addresses), the start time of each attempt in
    /// ms, and how long the race took.
    async fn run(scripts: &[Script]) -> (Result<u16, Vec<u16>>, Vec<(u16, u64)>, u64) {
        let addrs: Vec<SocketAddr> = (0..scripts.len())
            .map(|i| SocketAddr::from(([127, 0, 0, 1], i as u16)))
            .collect();
        let scripts = scripts.to_vec();
        let started = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let log = started.clone();
        let result = race(&addrs, ATTEMPT_DELAY, move |a: SocketAddr| {
            let script = scripts[a.port() as usize];
            log.lock()
                .unwrap()
                .push((a.port(), t0.elapsed().as_millis() as u64));
            async move {
                match script {
                    Script::Ok(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Ok(a.port())
                    }
                    Script::Fail(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Err(a.port())
                    }
                }
            }
        })
        .await
        .map_err(|errs| errs.into_iter().map(|(_, e)| e).collect());
        let took = t0.elapsed().as_millis() as u64;
        let started = started.lock().unwrap().clone();
        (result, started, took)
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_first_address_wins_alone() {
        let (result, started, took) = run(&[Script::Ok(10), Script::Ok(10)]).await;
        assert_eq!(result, Ok(0));
        assert_eq!(started, [(0, 0)]);
        assert_eq!(took, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_attempt_gets_company_after_250ms_and_the_first_success_wins() {
        // Address 0 hangs for 10 s; address 1 starts at 250 ms and wins at 300.
        let (result, started, took) = run(&[Script::Ok(10_000), Script::Ok(50)]).await;
        assert_eq!(result, Ok(1));
        assert_eq!(started, [(0, 0), (1, 250)]);
        assert_eq!(took, 300);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_starts_the_next_attempt_at_once() {
        let (result, started, took) =
            run(&[Script::Fail(20), Script::Fail(30), Script::Ok(5)]).await;
        assert_eq!(result, Ok(2));
        assert_eq!(started, [(0, 0), (1, 20), (2, 50)]);
        assert_eq!(took, 55);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_overlap_and_the_earlier_one_can_still_win() {
        // 0 succeeds at 400 ms; 1 (started at 250) would at 850; 2 (at 500) never starts.
        let (result, started, _) = run(&[Script::Ok(400), Script::Ok(600), Script::Ok(1)]).await;
        assert_eq!(result, Ok(0));
        assert_eq!(started, [(0, 0), (1, 250)]);
    }

    #[tokio::test(start_paused = true)]
    async fn all_failing_returns_every_error_in_start_order() {
        // 0 fails late (at 1 s), after 1 and 2 have failed.
        let (result, started, took) =
            run(&[Script::Fail(1000), Script::Fail(10), Script::Fail(10)]).await;
        assert_eq!(result, Err(vec![0, 1, 2]));
        assert_eq!(started, [(0, 0), (1, 250), (2, 260)]);
        assert_eq!(took, 1000);
    }
}
