//! `netcrab serve` against real clients: services, limits, timeouts,
//! shutdown and the accept loop under descriptor exhaustion.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn seed_exchange_with_defaults() {
    let server = Server::start(&[]);
    let out = run(&["connect", &server.addr_str(), "--send", "hello, world"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    server.proc.stderr.wait_for("recv hello, world");
}

#[test]
fn replies_once_per_read() {
    let server = Server::start(&["--reply", "pong"]);
    let mut s = server.connect();
    for _ in 0..3 {
        s.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
    }
}

#[test]
fn logged_payloads_are_escaped() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.write_all(b"\x1b[2J\x00bin\n").unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    server.proc.stderr.wait_for(r"recv \x1b[2J\x00bin\n");
}

#[test]
fn echo_of_a_multi_megabyte_payload_is_byte_exact() {
    let server = Server::start(&["--echo"]);
    let data = payload(8 << 20, 42);
    let out = run_with_input(&["connect", &server.addr_str()], data.clone());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "echoed bytes differ");
}

#[test]
fn serves_200_concurrent_clients() {
    let server = Server::start(&["--echo"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..200)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                let msg = format!("client {i}");
                s.write_all(msg.as_bytes()).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                String::from_utf8(read_to_end(&mut s)).unwrap() == msg
            })
        })
        .collect();
    let ok = clients
        .into_iter()
        .filter_map(|c| c.join().ok())
        .filter(|ok| *ok)
        .count();
    assert_eq!(ok, 200);
}

#[test]
fn half_closed_client_still_receives_the_full_reply() {
    let server = Server::start(&["--echo", "--lines"]);
    let mut s = server.connect();
    // Several lines and an unterminated last one, then EOF from our side.
    s.write_all(b"one\ntwo\nthree").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s), b"one\ntwo\nthree");
}

#[test]
fn lines_mode_replies_per_line() {
    let server = Server::start(&["--lines", "--reply", "ok"]);
    let mut s = server.connect();
    // Split across writes: line boundaries, not reads, drive the replies.
    s.write_all(b"a\nb").unwrap();
    s.write_all(b"c\nd\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s), b"ok\nok\nok\n");
}

#[test]
fn an_overlong_line_gets_an_error_and_the_server_keeps_serving() {
    let server = Server::start(&["--echo", "--lines", "--max-line", "8"]);
    let mut s = server.connect();
    s.write_all(b"short\nthis line is too long\n").unwrap();
    let got = String::from_utf8(read_to_end(&mut s)).unwrap();
    assert_eq!(got, "short\nerror: line too long (max 8 bytes)\n");
    server.proc.stderr.wait_for("line longer than 8 bytes");
    // Others are still served.
    let out = run(&["connect", &server.addr_str(), "--send", "next\n"]);
    assert_eq!(out.stdout, b"next\n");
}

#[test]
fn discard_reads_everything_and_answers_nothing() {
    let server = Server::start(&["--discard"]);
    let out = run_with_input(&["connect", &server.addr_str()], payload(1 << 20, 1));
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn port_file_holds_the_bound_port() {
    let dir = std::env::temp_dir().join(format!("netcrab-pf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("port");
    let server = Server::start(&["--port-file", file.to_str().unwrap()]);
    let port: u16 = std::fs::read_to_string(&file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(port, server.addr.port());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn idle_connections_are_closed() {
    let server = Server::start(&["--idle-timeout", "300ms"]);
    let mut s = server.connect();
    let start = Instant::now();
    assert_eq!(read_to_end(&mut s), b"");
    assert!(start.elapsed() >= Duration::from_millis(250));
    server.proc.stderr.wait_for("idle for 300ms");
}

/// The idle timeout runs from the last message, not from the start: a
/// connection that keeps talking for longer than the timeout stays open
/// (the timer, armed once, fires early and is pushed on without being
/// polled at every message), and is closed a timeout after it falls silent.
#[test]
fn a_talking_connection_outlives_the_idle_timeout_and_closes_once_silent() {
    let server = Server::start(&["--echo", "--idle-timeout", "1s"]);
    let mut s = server.connect();
    let start = Instant::now();
    let mut buf = [0u8; 1];
    while start.elapsed() < Duration::from_millis(2500) {
        s.write_all(b"x").unwrap();
        s.read_exact(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let silent = Instant::now();
    assert_eq!(read_to_end(&mut s), b"");
    assert!(silent.elapsed() >= Duration::from_millis(800));
    server.proc.stderr.wait_for("idle for 1.0s");
}

#[test]
fn connections_past_max_conns_wait_while_every_connection_is_busy() {
    let server = Server::start(&["--echo", "--max-conns", "1"]);
    let first = server.connect();
    // Busy: a message every 100 ms, so never idle long enough (2 s) to be
    // evicted for a newcomer.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        let mut first = first.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                first.write_all(b"a").unwrap();
                first.read_exact(&mut buf).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // The second connection completes its handshake (kernel backlog, or
    // accepted and waiting) but is not served while the first is busy.
    let mut second = server.connect();
    second.write_all(b"b").unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1];
    let err = second.read(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    server.proc.stderr.wait_for("connection limit reached (1)");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pinger.join().unwrap();
    first.shutdown(Shutdown::Both).unwrap();
    second.set_read_timeout(Some(PATIENCE)).unwrap();
    second.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"b");
}

/// A `--lines --echo` server draining for up to `drain`, with a connection
/// in the middle of a line: `a\n` answered, `x` pending. (`a\nx` goes out
/// in one write, so it arrives in one read on loopback: once `a\n` is
/// answered, the server holds `x`.)
fn server_mid_line(drain: &str) -> (Server, TcpStream) {
    let server = Server::start(&["--lines", "--echo", "--drain-timeout", drain]);
    let mut s = server.connect();
    s.write_all(b"a\nx").expect("send");
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).expect("echo");
    assert_eq!(&buf, b"a\n");
    (server, s)
}

#[test]
fn sigterm_closes_idle_connections_at_once() {
    // The drain timeout is huge: an exit at all means it was not waited for.
    let mut server = Server::start(&["-v", "--echo", "--drain-timeout", "1h"]);
    let mut idle = server.connect();
    idle.write_all(b"x").unwrap();
    let mut buf = [0u8; 1];
    idle.read_exact(&mut buf).unwrap();
    // Accepted (and idle since), never a byte sent.
    let mut silent = server.connect();
    server.proc.stderr.wait_for_count(": connected", 2);
    server.proc.signal(libc::SIGTERM);
    assert_eq!(code(server.proc.wait()), 0, "{}", server.proc.stderr.text());
    assert_eq!(read_to_end(&mut idle), b"");
    assert_eq!(read_to_end(&mut silent), b"");
    // No "draining" line is promised: the server marks a connection idle
    // only after its reply is written, so the client may have read the
    // echo a moment before; such a connection is drained and closes as it
    // turns idle (the exit above, well within the hour, shows it).
}

#[test]
fn sigterm_lets_a_partial_line_complete_then_exits_0() {
    let (mut server, mut s) = server_mid_line("1h");
    // Between lines, and surely accepted: a connection still in the listen
    // backlog when the listener closes is reset by the kernel, not drained.
    let mut idle = server.connect();
    idle.write_all(b"b\n").unwrap();
    let mut buf = [0u8; 2];
    idle.read_exact(&mut buf).unwrap();
    server.proc.signal(libc::SIGTERM);
    // Only the connection in the middle of a line is waited for (and the
    // idle one if the server had not yet marked it idle after its echo:
    // it closes as it does).
    let draining = server.proc.stderr.wait_for("draining");
    assert!(
        draining.contains("draining 1 open") || draining.contains("draining 2 open"),
        "{draining}"
    );
    assert_eq!(read_to_end(&mut idle), b"");
    // New connections are refused once draining starts...
    let refused = TcpStream::connect(server.addr);
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );
    // ...but the line in progress gets its answer; then the connection,
    // between lines again, is closed and the server exits.
    s.write_all(b"yz\n").unwrap();
    assert_eq!(read_to_end(&mut s), b"xyz\n");
    assert_eq!(code(server.proc.wait()), 0);
}

#[test]
fn drain_timeout_closes_lingering_connections() {
    let (mut server, mut s) = server_mid_line("200ms");
    server.proc.signal(libc::SIGTERM);
    assert_eq!(code(server.proc.wait()), 0);
    server
        .proc
        .stderr
        .wait_for("drain timeout: closing 1 connection");
    assert_eq!(read_to_end(&mut s), b"");
}

#[test]
fn a_second_signal_exits_at_once() {
    let (mut server, _s) = server_mid_line("60s");
    server.proc.signal(libc::SIGINT);
    server.proc.stderr.wait_for("draining");
    // A repeat within 1s is the same request (see signals.rs).
    std::thread::sleep(Duration::from_millis(1100));
    server.proc.signal(libc::SIGINT);
    assert_eq!(code(server.proc.wait()), 130);
}

#[test]
fn address_in_use_is_a_local_error() {
    let server = Server::start(&[]);
    let out = run(&["serve", &server.addr_str()]);
    assert_exit(&out, 9, "address in use");
}

#[test]
fn a_malformed_address_is_a_usage_error() {
    let out = run(&["serve", "127.0.0.1:http"]);
    assert_eq!(code(out.status), 2);
    assert!(stderr(&out).contains("port \"http\""), "{}", stderr(&out));
}

/// Under a low descriptor limit the accept loop backs off instead of
/// spinning, and serves again once descriptors are released.
#[test]
fn accept_backs_off_when_descriptors_run_out_and_recovers() {
    let mut cmd = netcrab();
    cmd.args(["serve", "127.0.0.1:0", "--echo"]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::from_proc(Proc::start_with(&mut cmd));

    // Open connections until the server can no longer accept: its log says so.
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(TcpStream::connect(server.addr).expect("connect (backlog)"));
        if server.proc.stderr.count("too many open files") > 0 {
            break;
        }
    }
    server.proc.stderr.wait_for("too many open files");
    assert_eq!(
        server.proc.stderr.count("too many open files"),
        1,
        "logged once per episode"
    );

    // While exhausted, the loop sleeps: it must not burn a core.
    let cpu_before = server.proc.cpu_time();
    let wall = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    let cpu = server.proc.cpu_time() - cpu_before;
    assert!(
        cpu < wall.elapsed() / 4,
        "accept loop used {cpu:?} of CPU in {:?}",
        wall.elapsed()
    );

    // Release descriptors: the waiting and new connections are served.
    held.truncate(4);
    server.proc.stderr.wait_for("accept: recovered");
    let out = run(&["connect", &server.addr_str(), "--send", "alive"]);
    assert_eq!(out.stdout, b"alive", "{}", stderr(&out));
}
