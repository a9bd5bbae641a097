//! `netcrab relay udp://LISTEN udp://UPSTREAM`: sessions per client, their
//! expiry and limit, a request/response load, a refusing upstream, and
//! shutdown; the upstream is an echo in the test that prefixes each reply
//! with the source address it saw.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::*;

/// A UDP echo on loopback answering `SOURCE|DATAGRAM`: who sent it, as the
/// upstream sees it, then what was sent. Stops when dropped.
struct PrefixEcho {
    addr: SocketAddr,
    /// Every source address seen.
    sources: Arc<Mutex<HashSet<SocketAddr>>>,
    stop: Arc<AtomicBool>,
}

impl PrefixEcho {
    fn start() -> PrefixEcho {
        PrefixEcho::on(UdpSocket::bind("127.0.0.1:0").expect("bind upstream"))
    }

    fn on(socket: UdpSocket) -> PrefixEcho {
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let sources = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (sources.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                seen.lock().expect("lock").insert(from);
                let reply = [format!("{from}|").as_bytes(), &buf[..n]].concat();
                let _ = socket.send_to(&reply, from);
            }
        });
        PrefixEcho {
            addr,
            sources,
            stop,
        }
    }

    fn sources(&self) -> HashSet<SocketAddr> {
        self.sources.lock().expect("lock").clone()
    }
}

impl Drop for PrefixEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts `netcrab -v relay udp://127.0.0.1:0 udp://UPSTREAM ARGS...` and
/// waits until it listens.
fn relay(upstream: SocketAddr, args: &[&str]) -> Server {
    let up = format!("udp://{upstream}");
    let mut all = vec!["-v", "relay", "udp://127.0.0.1:0", &up];
    all.extend_from_slice(args);
    Server::start_exact(&all)
}

/// A client socket connected to the relay, with a read timeout.
fn client(relay: &Server) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.connect(relay.addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s
}

/// Sends `msg`, returns the reply split into the upstream's view of the
/// source and the echoed datagram.
fn ask(s: &UdpSocket, msg: &str) -> (SocketAddr, String) {
    s.send(msg.as_bytes()).expect("send");
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf).expect("a reply");
    split(&buf[..n])
}

fn split(reply: &[u8]) -> (SocketAddr, String) {
    let text = String::from_utf8_lossy(reply);
    let (from, echoed) = text.split_once('|').expect("SOURCE|DATA");
    (from.parse().expect("a source address"), echoed.to_owned())
}

/// Stops the relay with SIGTERM and returns its stopped line.
fn stop(relay: &mut Server) -> String {
    relay.proc.signal(libc::SIGTERM);
    assert_eq!(code(relay.proc.wait()), 0, "{}", relay.proc.stderr.text());
    relay.proc.stderr.wait_for("stopped after")
}

#[test]
fn two_clients_never_see_each_others_replies() {
    let upstream = PrefixEcho::start();
    let mut relay = relay(upstream.addr, &[]);
    let (a, b) = (client(&relay), client(&relay));
    let mut seen = [HashSet::new(), HashSet::new()];
    // Interleaved: a's request, b's request, then both replies.
    for i in 0..50 {
        for (tag, s) in [("a", &a), ("b", &b)] {
            s.send(format!("{tag}{i}").as_bytes()).expect("send");
        }
        for (k, (tag, s)) in [("a", &a), ("b", &b)].into_iter().enumerate() {
            let mut buf = [0u8; 256];
            let (n, from) = s.recv_from(&mut buf).expect("a reply");
            assert_eq!(from, relay.addr, "replies come from the relay's address");
            let (source, echoed) = split(&buf[..n]);
            assert_eq!(echoed, format!("{tag}{i}"));
            seen[k].insert(source);
        }
    }
    // One upstream source port per client, a different one each.
    assert_eq!(seen[0].len(), 1, "{seen:?}");
    assert_eq!(seen[1].len(), 1, "{seen:?}");
    assert!(seen[0].is_disjoint(&seen[1]), "{seen:?}");
    assert_eq!(upstream.sources().len(), 2);
    for s in [&a, &b] {
        let opened = format!("{} -> udp://{}", s.local_addr().unwrap(), upstream.addr);
        relay.proc.stderr.wait_for(&opened);
    }
    let stopped = stop(&mut relay);
    assert!(
        stopped.contains("after 2 session(s): 100 datagram(s) up, 100 down"),
        "{stopped}"
    );
    relay
        .proc
        .stderr
        .wait_for_count("closed at shutdown (up 50 datagram(s) 140 bytes", 2);
}

/// Datagram `i` of a burst: its size grows by 900 bytes a step (the
/// first is empty), its bytes say which it is.
fn burst_datagram(i: usize) -> Vec<u8> {
    vec![i as u8; i * 900]
}

#[test]
fn a_burst_of_replies_reaches_the_client_whole_and_in_order() {
    // An upstream answering each datagram with 16 replies back to back, so
    // the session's task finds several queued at once (sent on in batches,
    // some larger than one call's 64 KiB).
    let upstream = UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
    let up_addr = upstream.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            let Ok((_, from)) = upstream.recv_from(&mut buf) else {
                return;
            };
            for i in 0..16 {
                let _ = upstream.send_to(&burst_datagram(i), from);
            }
        }
    });
    let mut relay = relay(up_addr, &[]);
    let s = client(&relay);
    let mut buf = vec![0u8; 65_536];
    for round in 0..3 {
        s.send(b"go").expect("send");
        for i in 0..16 {
            let n = s.recv(&mut buf).expect("a reply");
            assert_eq!(buf[..n], burst_datagram(i), "round {round}, reply {i}");
        }
    }
    let stopped = stop(&mut relay);
    assert!(
        stopped.contains("after 1 session(s): 3 datagram(s) up, 48 down"),
        "{stopped}"
    );
}

#[test]
fn an_idle_session_expires_and_the_next_datagram_opens_a_new_one() {
    let upstream = PrefixEcho::start();
    let relay = relay(upstream.addr, &["--udp-idle", "200ms"]);
    let c = client(&relay);
    let me = c.local_addr().unwrap();
    let (first, echoed) = ask(&c, "hello");
    assert_eq!(echoed, "hello");
    let line = relay
        .proc
        .stderr
        .wait_for("idle timeout (nothing moved for 200ms)");
    assert!(
        line.starts_with(&format!("netcrab: {me} -> udp://")),
        "{line}"
    );
    assert!(line.contains(&format!("via {first}")), "{line}");
    assert!(
        line.contains("(up 1 datagram(s) 5 bytes, down 1 datagram(s) "),
        "{line}"
    );
    let (second, _) = ask(&c, "again");
    assert_ne!(second, first, "a new session has a new upstream socket");
    assert_eq!(upstream.sources(), HashSet::from([first, second]));
    relay.proc.stderr.wait_for_count("session opened", 2);
}

#[test]
fn at_the_session_limit_new_clients_are_dropped_and_counted() {
    let upstream = PrefixEcho::start();
    let mut relay = relay(upstream.addr, &["--max-conns", "1"]);
    let (a, b) = (client(&relay), client(&relay));
    ask(&a, "first");
    for _ in 0..3 {
        b.send(b"turned away").expect("send");
    }
    // One socket, read in order: b's datagrams were handled before this.
    assert_eq!(ask(&a, "second").1, "second");
    relay
        .proc
        .stderr
        .wait_for("session limit reached (1): 1 datagram(s) from new clients dropped");
    b.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 64];
    assert_eq!(
        b.recv(&mut buf).map_err(|e| e.kind()).err(),
        Some(ErrorKind::WouldBlock)
    );
    assert_eq!(upstream.sources().len(), 1);
    let stopped = stop(&mut relay);
    assert!(
        stopped.contains("1 session(s): 2 datagram(s) up, 2 down, 3 from new clients dropped at the session limit"),
        "{stopped}"
    );
    // The two unlogged drops are logged at the end.
    relay
        .proc
        .stderr
        .wait_for("2 more datagram(s) from new clients dropped");
}

#[test]
fn request_response_under_load_every_reply_matches_its_request() {
    const CLIENTS: usize = 20;
    const REQUESTS: u32 = 200;
    let upstream = PrefixEcho::start();
    let mut relay = relay(upstream.addr, &[]);
    let relay_addr = relay.addr;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            std::thread::spawn(move || {
                let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
                s.connect(relay_addr).expect("connect");
                // Like a DNS client: a lost datagram is asked again.
                s.set_read_timeout(Some(Duration::from_secs(2)))
                    .expect("timeout");
                let mut sources = HashSet::new();
                let mut retries = 0;
                let mut buf = [0u8; 256];
                for req in 0..REQUESTS {
                    let query = format!("client {id} request {req}");
                    s.send(query.as_bytes()).expect("send");
                    loop {
                        match s.recv(&mut buf) {
                            Ok(n) => {
                                let (source, echoed) = split(&buf[..n]);
                                sources.insert(source);
                                if echoed == query {
                                    break;
                                }
                                // Only a late answer to an earlier request
                                // of this client may come instead.
                                let prefix = format!("client {id} request ");
                                let earlier = echoed
                                    .strip_prefix(&prefix)
                                    .and_then(|n| n.parse::<u32>().ok());
                                assert!(
                                    earlier.is_some_and(|n| n <= req),
                                    "client {id} got {echoed:?}"
                                );
                            }
                            Err(_) => {
                                retries += 1;
                                assert!(retries <= 10, "client {id}: too many losses");
                                s.send(query.as_bytes()).expect("send");
                            }
                        }
                    }
                }
                (sources, retries)
            })
        })
        .collect();
    let mut all_sources = HashSet::new();
    for worker in workers {
        let (sources, _) = worker.join().expect("client thread");
        assert_eq!(sources.len(), 1, "one session per client: {sources:?}");
        all_sources.extend(sources);
    }
    assert_eq!(all_sources.len(), CLIENTS);
    let stopped = stop(&mut relay);
    assert!(stopped.contains("after 20 session(s): "), "{stopped}");
}

#[test]
fn a_refusing_upstream_is_counted_and_the_session_carries_on() {
    // A port nothing listens on, for now.
    let port_holder = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = port_holder.local_addr().expect("addr");
    drop(port_holder);
    let mut relay = relay(addr, &[]);
    let c = client(&relay);
    c.send(b"anyone?").expect("send");
    relay
        .proc
        .stderr
        .wait_for("refused (nothing listens there)");
    // The upstream comes up on that port: the same session reaches it.
    let upstream = PrefixEcho::on(UdpSocket::bind(addr).expect("rebind the upstream port"));
    let (source, echoed) = ask(&c, "now?");
    assert_eq!(echoed, "now?");
    relay.proc.stderr.wait_for_count("session opened", 1);
    assert_eq!(relay.proc.stderr.count("session opened"), 1);
    assert_eq!(upstream.sources(), HashSet::from([source]));
    let stopped = stop(&mut relay);
    assert!(stopped.contains("refused by the upstream"), "{stopped}");
    let line = relay.proc.stderr.wait_for("closed at shutdown");
    assert!(line.contains("refused by the upstream"), "{line}");
}

#[test]
fn shutdown_waits_for_an_outstanding_reply_only_until_the_drain_timeout() {
    // An upstream that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    silent.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut relay = relay(silent.local_addr().unwrap(), &["--drain-timeout", "300ms"]);
    let c = client(&relay);
    c.send(b"hello?").expect("send");
    let mut buf = [0u8; 16];
    assert_eq!(silent.recv(&mut buf).expect("relayed"), 6);
    let stopped = stop(&mut relay);
    assert!(
        stopped.contains(
            "1 session(s): 1 datagram(s) up, 0 down, 1 session(s) closed at the drain timeout"
        ),
        "{stopped}"
    );
    relay
        .proc
        .stderr
        .wait_for("closed at the drain timeout (up 1 datagram(s)");
}

#[test]
fn sessions_come_from_the_source_address() {
    let upstream = PrefixEcho::start();
    let relay = relay(upstream.addr, &["-s", "127.0.0.2"]);
    let c = client(&relay);
    let (source, _) = ask(&c, "from where?");
    assert_eq!(source.ip().to_string(), "127.0.0.2");
}

#[test]
fn usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["relay", "udp://127.0.0.1:0", "127.0.0.1:1"],
            "a udp:// listener relays to a udp:// upstream",
        ),
        (
            &["relay", "127.0.0.1:0", "udp://127.0.0.1:1"],
            "a udp:// upstream is relayed from a udp:// listener",
        ),
        (
            &[
                "relay",
                "udp://127.0.0.1:0",
                "udp://127.0.0.1:1",
                "--udp-idle",
                "10ms",
            ],
            "out of range (100ms to 1d)",
        ),
        (
            &["relay", "127.0.0.1:0", "127.0.0.1:1", "--udp-idle", "1s"],
            "--udp-idle applies to udp:// relays",
        ),
        (
            &[
                "relay",
                "udp://127.0.0.1:0",
                "udp://127.0.0.1:1",
                "--send-proxy",
                "v1",
            ],
            "--send-proxy applies to stream relays",
        ),
        (
            &[
                "relay",
                "udp://127.0.0.1:0",
                "udp://127.0.0.1:1",
                "-p",
                "4000",
            ],
            "--source-port needs --max-conns 1",
        ),
        (
            &["relay", "-6", "udp://127.0.0.1:0", "udp://[::1]:1"],
            "127.0.0.1",
        ),
    ];
    for (args, needle) in cases {
        assert_exit(&run(args), 2, needle);
    }
}

/// Not a check: measures request/response through the relay against the
/// same upstream direct (and through socat, if installed), one after the
/// other in one run, with the relay's CPU time per datagram relayed.
/// `cargo test --release --test it udp_relay::measure -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, run by hand (docs/BENCHMARKS.md)"]
fn measure_relay_against_direct() {
    const CLIENTS: usize = 16;
    const RUN: Duration = Duration::from_secs(3);
    let upstream = Server::start_exact(&["serve", "-u", "127.0.0.1:0", "--echo"]);
    let up = upstream.addr;
    // Closed loop: each client sends 64 bytes and waits for the echo.
    let load = |target: SocketAddr| -> u64 {
        let deadline = std::time::Instant::now() + RUN;
        let workers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                std::thread::spawn(move || {
                    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
                    s.connect(target).expect("connect");
                    s.set_read_timeout(Some(Duration::from_millis(200)))
                        .expect("timeout");
                    let (msg, mut buf, mut done) = ([7u8; 64], [0u8; 128], 0u64);
                    while std::time::Instant::now() < deadline {
                        s.send(&msg).expect("send");
                        if s.recv(&mut buf).is_ok() {
                            done += 1;
                        }
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("client")).sum()
    };
    let report = |path: &str, requests: u64, cpu: Option<Duration>| {
        let rate = requests as f64 / RUN.as_secs_f64();
        match cpu {
            Some(cpu) => println!(
                "{path:<24} {rate:>9.0} req/s   relay CPU {:>6.2} s   {:>5.2} us per datagram relayed",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / (2 * requests).max(1) as f64
            ),
            None => println!("{path:<24} {rate:>9.0} req/s"),
        }
    };
    report("direct", load(up), None);
    let relay = Server::start_exact(&["relay", "udp://127.0.0.1:0", &format!("udp://{up}")]);
    let before = relay.proc.cpu_time();
    let requests = load(relay.addr);
    report(
        "netcrab relay",
        requests,
        Some(relay.proc.cpu_time() - before),
    );
    drop(relay);
    if std::process::Command::new("socat")
        .arg("-V")
        .output()
        .is_ok()
    {
        let port = free_port();
        let mut socat = std::process::Command::new("socat")
            .arg(format!("UDP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
            .arg(format!("UDP:{up}"))
            .spawn()
            .expect("socat");
        // socat has no readiness line: poll with one request until it answers.
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
        probe.connect(("127.0.0.1", port)).expect("connect");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let waited = std::time::Instant::now();
        while probe.send(b"x").is_err() || probe.recv(&mut buf).is_err() {
            assert!(waited.elapsed() < PATIENCE, "socat did not answer");
        }
        let pid = socat.id();
        let requests = load(SocketAddr::from(([127, 0, 0, 1], port)));
        // socat and the children it forked, one per client, still alive.
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let children: Vec<u32> = children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let cpu = std::iter::once(pid)
            .chain(children.iter().copied())
            .map(cpu_time_of)
            .sum();
        report("socat (fork)", requests, Some(cpu));
        for child in children {
            // SAFETY: kill(2) on a child socat forked has no memory effects.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(child as i32, libc::SIGTERM)
            };
        }
        let _ = socat.kill();
        let _ = socat.wait();
    }
}

/// CPU time (user + system) process `pid` has used, from /proc.
fn cpu_time_of(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    let Some(close) = stat.rfind(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Faults on the UDP relay: `--drop 1` (downstream, the default) lets the
/// upstream hear every datagram and the client none; `--up --drop 1` keeps
/// the upstream from hearing any; `--latency` holds every reply at least
/// that long; `--fault-rate 0` spares every session.
#[test]
fn faults_drop_and_delay_datagrams() {
    let echo = PrefixEcho::start();
    // Everything downstream dropped: the upstream hears, the client gets nothing.
    let dropping = relay(echo.addr, &["--drop", "1"]);
    let c = client(&dropping);
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    c.send(b"lost").expect("send");
    let mut buf = [0u8; 256];
    let got = c.recv(&mut buf);
    assert!(got.is_err(), "a reply came through --drop 1: {got:?}");
    let deadline = std::time::Instant::now() + PATIENCE;
    while echo.sources().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the upstream never heard it"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Upstream-bound dropped instead: the upstream hears nothing.
    let quiet = PrefixEcho::start();
    let up = relay(quiet.addr, &["--drop", "1", "--up"]);
    let c = client(&up);
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    c.send(b"lost").expect("send");
    assert!(c.recv(&mut buf).is_err());
    assert!(
        quiet.sources().is_empty(),
        "the upstream heard a dropped datagram"
    );
    // A rate of 0 affects no session at all.
    let spared = relay(echo.addr, &["--drop", "1", "--fault-rate", "0"]);
    let c = client(&spared);
    for _ in 0..20 {
        c.send(b"kept").expect("send");
        let n = c.recv(&mut buf).expect("a reply with --fault-rate 0");
        assert!(buf[..n].ends_with(b"|kept"));
    }
    // Latency: every reply at least 200 ms after its request.
    let slow = relay(echo.addr, &["--latency", "200ms"]);
    let c = client(&slow);
    for _ in 0..3 {
        let sent = std::time::Instant::now();
        c.send(b"slow").expect("send");
        let n = c.recv(&mut buf).expect("a delayed reply");
        assert!(buf[..n].ends_with(b"|slow"));
        assert!(
            sent.elapsed() >= Duration::from_millis(200),
            "{:?}",
            sent.elapsed()
        );
    }
}

/// `--drop` is for datagrams: a byte-stream relay refuses it (exit 2).
#[test]
fn drop_on_a_stream_relay_is_a_usage_error() {
    let out = run(&["relay", "127.0.0.1:0", "127.0.0.1:9", "--drop", "0.5"]);
    assert_eq!(
        code(out.status),
        2,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
