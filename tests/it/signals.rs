//! SIGINT/SIGTERM: the first drains, a second one at least 1 s later exits
//! at once, and a repeat within 1 s (timeout(1) and supervisors signal the
//! process and its group) is the same request.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::util::*;

/// A server with one connection open in the middle of a line (`a\n`
/// echoed, `x` pending: one write, one read on loopback), draining for up
/// to `drain`. (A connection between lines would close at once.)
fn server_with_a_connection(drain: &str) -> (Server, std::net::TcpStream) {
    let server = Server::start(&["-v", "--lines", "--echo", "--drain-timeout", drain]);
    let mut s = server.connect();
    s.write_all(b"a\nx").expect("send");
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).expect("echo");
    (server, s)
}

#[test]
fn two_sigterms_back_to_back_still_drain_gracefully() {
    let (mut server, mut s) = server_with_a_connection("20s");
    // As timeout(1) does: the process, then its group, at once (the
    // kernel may merge these two)...
    let first = Instant::now();
    server.proc.signal(libc::SIGTERM);
    server.proc.signal(libc::SIGTERM);
    server.proc.stderr.wait_for("draining 1 open connection");
    // ...and one more, surely seen apart from the first, well within 1 s.
    assert!(
        first.elapsed() < Duration::from_millis(900),
        "too slow to test"
    );
    server.proc.signal(libc::SIGTERM);
    server.proc.stderr.wait_for("the same request");
    // The line in progress is still served to its end, then closed...
    s.write_all(b"after\n").unwrap();
    assert_eq!(read_to_end(&mut s), b"xafter\n");
    // ...and the exit is the graceful one.
    assert_eq!(code(server.proc.wait()), 0, "{}", server.proc.stderr.text());
    assert_eq!(server.proc.stderr.count("exiting now"), 0);
}

#[test]
fn a_second_sigterm_a_second_later_exits_at_once() {
    let (mut server, _s) = server_with_a_connection("60s");
    server.proc.signal(libc::SIGTERM);
    server.proc.stderr.wait_for("draining 1 open connection");
    // The rule under test is about time: wait past the 1 s window.
    std::thread::sleep(Duration::from_millis(1100));
    let sent = Instant::now();
    server.proc.signal(libc::SIGTERM);
    assert_eq!(code(server.proc.wait()), 143);
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    // The last line reached stderr before the exit (the log queue is flushed).
    server.proc.stderr.wait_for("second signal: exiting now");
}
