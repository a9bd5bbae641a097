//! `serve --stdio` (the netcat listener, one connection or with `-k`
//! several), `--broker`, `--chat`, and `--once` for serve and relay: the
//! real binary on loopback, its stdin and stdout files or pipes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// Starts netcrab with `args`, stdin and stdout as given, stderr collected.
fn start(args: &[&str], stdin: Stdio, stdout: Stdio) -> Proc {
    let mut child = netcrab()
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netcrab");
    let stderr = Lines::collect(child.stderr.take().expect("stderr"));
    Proc { child, stderr }
}

/// Waits for `listening on 127.0.0.1:PORT` and returns the address.
fn listening(proc: &Proc) -> String {
    let line = proc.stderr.wait_for("listening on ");
    line.rsplit("listening on ")
        .next()
        .and_then(|a| a.split_whitespace().next())
        .expect("address")
        .trim_start_matches("udp://")
        .to_owned()
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    s
}

/// Reads exactly `n` bytes.
fn read_n(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).expect("read");
    buf
}

/// Closes `s` with a reset (SO_LINGER 0).
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(s);
}

/// 50 MB each way between `serve --stdio` and `connect`, both on files:
/// sendfile(2) sends each side's stdin; the outputs are compared byte for
/// byte.
#[test]
fn stdio_moves_50_mb_each_way_between_files() {
    let dir = temp_dir();
    let path = |name: &str| dir.path().join(name);
    let size = 50 * 1024 * 1024 + 3;
    std::fs::write(path("server.in"), payload(size, 1)).expect("write");
    std::fs::write(path("client.in"), payload(size, 2)).expect("write");
    let file = |name: &str| std::fs::File::open(path(name)).expect("open");
    let create = |name: &str| std::fs::File::create(path(name)).expect("create");
    let mut server = start(
        &["-v", "serve", "127.0.0.1:0", "--stdio"],
        file("server.in").into(),
        create("server.out").into(),
    );
    let addr = listening(&server);
    let client = netcrab()
        .args(["connect", &addr])
        .stdin(file("client.in"))
        .stdout(create("client.out"))
        .output()
        .expect("connect");
    assert_eq!(code(client.status), 0, "{}", stderr(&client));
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
    server
        .stderr
        .wait_for("connect: splice path (upload: sendfile, download: copy)");
    let same = |a: &str, b: &str| {
        std::fs::read(path(a)).expect("read") == std::fs::read(path(b)).expect("read")
    };
    assert!(same("server.in", "client.out"), "server to client differs");
    assert!(same("client.in", "server.out"), "client to server differs");
}

/// The same through pipes on both sides of the server (splice(2)), and
/// with --no-splice (the copy): byte for byte either way.
fn through_pipes(extra: &[&str], path: &str) {
    let mut args = vec!["-v", "serve", "127.0.0.1:0", "--stdio"];
    args.extend_from_slice(extra);
    let mut server = start(&args, Stdio::piped(), Stdio::piped());
    let addr = listening(&server);
    let to_client = payload(8 * 1024 * 1024 + 1, 3);
    let to_server = payload(8 * 1024 * 1024 + 2, 4);
    let mut stdin = server.child.stdin.take().expect("stdin");
    let input = to_client.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).expect("server stdin"));
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let client = run_with_input(&["connect", &addr], to_server.clone());
    writer.join().expect("writer");
    assert_eq!(code(client.status), 0, "{}", stderr(&client));
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
    out.wait_for_eof();
    assert!(client.stdout == to_client, "server to client differs");
    assert!(out.bytes() == to_server, "client to server differs");
    server.stderr.wait_for(path);
}

#[test]
fn stdio_moves_bytes_through_pipes_with_splice() {
    through_pipes(&[], "splice path (upload: splice, download: splice)");
}

#[test]
fn stdio_moves_bytes_through_pipes_with_copy() {
    through_pipes(&["--no-splice"], "connect: copy path");
}

/// A clean close exits 0; the listener takes no second connection.
#[test]
fn stdio_exits_0_after_a_clean_close() {
    let mut server = start(
        &["-v", "serve", "127.0.0.1:0", "--stdio"],
        Stdio::null(),
        Stdio::piped(),
    );
    let addr = listening(&server);
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let mut s = connect(&addr);
    server.stderr.wait_for("not accepting any more connections");
    assert!(TcpStream::connect(&addr).is_err(), "a second connection");
    s.write_all(b"hello\n").expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    // stdin is empty: the server half-closes at once.
    assert_eq!(read_to_end(&mut s), b"");
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
    out.wait_for_eof();
    assert_eq!(out.bytes(), b"hello\n");
}

/// A reset exits 6, as connect's does.
#[test]
fn stdio_exits_6_after_a_reset() {
    let mut server = start(
        &["serve", "127.0.0.1:0", "--stdio"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let addr = listening(&server);
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let mut s = connect(&addr);
    s.write_all(b"partial").expect("write");
    out.wait_for_len(7);
    reset(s);
    assert_eq!(code(server.wait()), 6, "{}", server.stderr.text());
    server.stderr.wait_for("connection reset by peer");
}

/// stdin's EOF shuts down the server's sending side only: the peer sees
/// the end of the question, and its answer still reaches stdout.
#[test]
fn stdio_half_closes_at_stdin_eof_and_keeps_reading() {
    let mut server = start(
        &["serve", "127.0.0.1:0", "--stdio"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let addr = listening(&server);
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let mut stdin = server.child.stdin.take().expect("stdin");
    stdin.write_all(b"question\n").expect("stdin");
    drop(stdin);
    let mut s = connect(&addr);
    assert_eq!(read_to_end(&mut s), b"question\n");
    s.write_all(b"answer\n")
        .expect("write after the server's EOF");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
    out.wait_for_eof();
    assert_eq!(out.bytes(), b"answer\n");
}

/// ncat as the client: what it sends reaches stdout, stdin reaches it.
#[test]
fn ncat_talks_to_serve_stdio() {
    if Command::new("ncat").arg("--version").output().is_err() {
        eprintln!("ncat missing (scripts/install-test-deps.sh installs it); skipped");
        return;
    }
    let mut server = start(
        &["serve", "127.0.0.1:0", "--stdio"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let addr = listening(&server);
    let port = addr.rsplit(':').next().expect("port").to_owned();
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let mut stdin = server.child.stdin.take().expect("stdin");
    let to_ncat = payload(1024 * 1024, 5);
    let input = to_ncat.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).expect("server stdin"));
    let from_ncat = payload(1024 * 1024 + 9, 6);
    let mut ncat = Command::new("ncat")
        .args(["127.0.0.1", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ncat");
    let mut ncat_in = ncat.stdin.take().expect("ncat stdin");
    let sent = from_ncat.clone();
    let feeder = std::thread::spawn(move || ncat_in.write_all(&sent).expect("ncat stdin"));
    let got = Collected::collect(ncat.stdout.take().expect("ncat stdout"));
    writer.join().expect("writer");
    feeder.join().expect("feeder");
    assert!(
        got.wait_for_len(to_ncat.len()) == to_ncat,
        "stdin to ncat differs"
    );
    out.wait_for_len(from_ncat.len());
    assert!(out.bytes() == from_ncat, "ncat to stdout differs");
    // ncat closes at its stdin's EOF; the server ends cleanly.
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
    let _ = ncat.kill();
    let _ = ncat.wait();
}

/// With -k: stdin goes to every client, and what each client sends
/// appears on stdout; at stdin EOF every client gets EOF.
#[test]
fn stdio_keep_open_joins_two_clients() {
    let mut server = start(
        &["serve", "127.0.0.1:0", "--stdio", "-k"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let addr = listening(&server);
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let mut a = connect(&addr);
    server.stderr.wait_for("joined as user1");
    let mut b = connect(&addr);
    server.stderr.wait_for("joined as user2");
    let mut stdin = server.child.stdin.take().expect("stdin");
    stdin.write_all(b"to all\n").expect("stdin");
    stdin.flush().expect("stdin");
    assert_eq!(read_n(&mut a, 7), b"to all\n");
    assert_eq!(read_n(&mut b, 7), b"to all\n");
    a.write_all(b"from a\n").expect("a");
    out.wait_for_len(7);
    b.write_all(b"from b\n").expect("b");
    assert_eq!(out.wait_for_len(14), b"from a\nfrom b\n");
    drop(stdin);
    assert_eq!(read_to_end(&mut a), b"");
    assert_eq!(read_to_end(&mut b), b"");
    // Half-closed, a client may still send.
    a.write_all(b"late\n").expect("a after EOF");
    assert_eq!(out.wait_for_len(19), b"from a\nfrom b\nlate\n");
}

/// Over UDP, stdin goes to whoever sent last.
#[test]
fn udp_stdio_answers_the_last_sender() {
    let mut server = start(
        &["serve", "-u", "127.0.0.1:0", "--stdio"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let addr = listening(&server);
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let mut stdin = server.child.stdin.take().expect("stdin");
    let socket = || {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s.connect(&addr).expect("connect");
        s
    };
    let (a, b) = (socket(), socket());
    let mut buf = [0u8; 64];
    a.send(b"from a\n").expect("send");
    out.wait_for_len(7);
    stdin.write_all(b"one").expect("stdin");
    stdin.flush().expect("stdin");
    let n = a.recv(&mut buf).expect("a gets the answer");
    assert_eq!(&buf[..n], b"one");
    b.send(b"from b\n").expect("send");
    assert_eq!(out.wait_for_len(14), b"from a\nfrom b\n");
    stdin.write_all(b"two").expect("stdin");
    stdin.flush().expect("stdin");
    let n = b.recv(&mut buf).expect("b gets the answer");
    assert_eq!(&buf[..n], b"two");
    server.signal(libc::SIGTERM);
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
}

/// `n` clients of a hub started with `args`, each seen joining.
fn hub_clients(args: &[&str], n: usize) -> (Proc, String, Vec<TcpStream>) {
    let mut all = vec!["serve", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let server = start(&all, Stdio::null(), Stdio::null());
    let addr = listening(&server);
    let clients = (1..=n)
        .map(|i| {
            let s = connect(&addr);
            server.stderr.wait_for(&format!("joined as user{i}"));
            s
        })
        .collect();
    (server, addr, clients)
}

/// The broker sends each client's bytes to all the others, never back.
#[test]
fn broker_sends_to_the_others_never_back() {
    let (_server, _, mut c) = hub_clients(&["--broker"], 3);
    c[0].write_all(b"from a").expect("a");
    assert_eq!(read_n(&mut c[1], 6), b"from a");
    assert_eq!(read_n(&mut c[2], 6), b"from a");
    c[1].write_all(b"from b").expect("b");
    // a's first bytes are b's: its own never came back.
    assert_eq!(read_n(&mut c[0], 6), b"from b");
    assert_eq!(read_n(&mut c[2], 6), b"from b");
}

/// A client that stops reading is disconnected once its queue is full;
/// the others receive everything, and clients leaving or resetting do not
/// stop the broker.
#[test]
fn broker_disconnects_a_client_that_stops_reading() {
    let (server, addr, mut c) = hub_clients(&["--broker"], 2);
    // The silent one, with a small receive buffer (no autotuning up to
    // tcp_rmem's maximum): what it can hold is bounded whatever the host.
    let silent =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    silent.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    let to: std::net::SocketAddr = addr.parse().expect("address");
    silent.connect(&to.into()).expect("connect");
    server.stderr.wait_for("joined as user3");
    let chunk = payload(64 * 1024, 8);
    let mut sent = 0;
    // The silent client's socket buffers and queue fill up; the reading
    // one never lags by more than a chunk (less than its queue).
    while server.stderr.count("too slow") == 0 {
        assert!(sent < 512, "the silent client was never disconnected");
        c[0].write_all(&chunk).expect("a");
        assert!(read_n(&mut c[1], chunk.len()) == chunk, "b got other bytes");
        sent += 1;
    }
    server.stderr.wait_for("user3 too slow");
    drop(silent);
    // The others carry on, and one leaving with a reset stops nobody.
    let late = connect(&addr);
    server.stderr.wait_for("joined as user4");
    reset(late);
    server.stderr.wait_for("user4 left");
    c[1].write_all(b"still here").expect("b");
    assert_eq!(read_n(&mut c[0], 10), b"still here");
}

/// Reads one line.
fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).expect("line");
    s
}

/// Chat: ids, join and leave notices, lines prefixed with their sender;
/// a line over --max-line ends its sender's connection with an error.
#[test]
fn chat_prefixes_lines_and_announces_joins_and_leaves() {
    let server = start(
        &["serve", "127.0.0.1:0", "--chat", "--max-line", "16"],
        Stdio::null(),
        Stdio::null(),
    );
    let addr = listening(&server);
    let mut a = BufReader::new(connect(&addr));
    assert_eq!(line(&mut a), "<server> you are <user1>\n");
    let mut b = BufReader::new(connect(&addr));
    assert_eq!(line(&mut b), "<server> you are <user2>\n");
    assert_eq!(line(&mut a), "<server> <user2> joined\n");
    // A line cut across writes arrives whole.
    a.get_mut().write_all(b"hel").expect("a");
    a.get_mut().write_all(b"lo\nsecond\n").expect("a");
    assert_eq!(line(&mut b), "<user1> hello\n");
    assert_eq!(line(&mut b), "<user1> second\n");
    b.get_mut()
        .write_all(b"this line is far too long\n")
        .expect("b");
    assert_eq!(
        line(&mut b),
        "<server> error: line too long (the limit is 16 bytes)\n"
    );
    assert_eq!(line(&mut b), "");
    assert_eq!(line(&mut a), "<server> <user2> left\n");
    server.stderr.wait_for("line longer than 16 bytes");
}

/// `--once` with echo: the outcome of the one connection is the exit code.
#[test]
fn once_echo_exits_0_after_a_clean_close_and_6_after_a_reset() {
    let mut server = start(
        &["serve", "127.0.0.1:0", "--echo", "--once"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut s = connect(&listening(&server));
    s.write_all(b"ping").expect("write");
    assert_eq!(read_n(&mut s, 4), b"ping");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut s), b"");
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());

    let mut server = start(
        &["serve", "127.0.0.1:0", "--echo", "--once"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut s = connect(&listening(&server));
    s.write_all(b"ping").expect("write");
    assert_eq!(read_n(&mut s, 4), b"ping");
    reset(s);
    assert_eq!(code(server.wait()), 6, "{}", server.stderr.text());
}

/// `--once` with relay: 0 after a relayed connection closed cleanly, the
/// upstream's error code (4, refused) when it could not be reached.
#[test]
fn once_relay_exits_with_the_connection_outcome() {
    let upstream = Server::start(&["--echo"]);
    let mut relay = start(
        &["relay", "127.0.0.1:0", &upstream.addr_str(), "--once"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut s = connect(&listening(&relay));
    s.write_all(b"ping").expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut s), b"ping");
    assert_eq!(code(relay.wait()), 0, "{}", relay.stderr.text());

    let closed = format!("127.0.0.1:{}", free_port());
    let mut relay = start(
        &["relay", "127.0.0.1:0", &closed, "--once", "--retry", "0"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut s = connect(&listening(&relay));
    assert_eq!(read_to_end(&mut s), b"");
    assert_eq!(code(relay.wait()), 4, "{}", relay.stderr.text());
    relay.stderr.wait_for("connection refused");
}

#[test]
fn modes_that_mean_nothing_are_usage_errors() {
    for args in [
        &["serve", "--broker", "--once"][..],
        &["serve", "--chat", "--once"],
        &["serve", "--stdio", "--once", "-k"],
        &["serve", "--stdio", "--echo"],
        &["serve", "--broker", "--chat"],
        &["serve", "--stdio", "--lines"],
        &["serve", "-u", "--stdio", "--once"],
        &["serve", "-u", "--broker"],
        &["serve", "--echo", "--no-splice"],
    ] {
        let out = run(args);
        assert_eq!(code(out.status), 2, "{args:?}: {}", stderr(&out));
    }
}

/// `serve ADDR --stdio` and `connect` exchange a few hundred KB each way
/// (and the server exits 0), over any stream transport.
fn stdio_roundtrip(listen: &str, connect_extra: &[&str]) {
    let mut server = start(
        &["serve", listen, "--stdio"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let line = server.stderr.wait_for("listening on ");
    let addr = line
        .rsplit("listening on ")
        .next()
        .and_then(|a| a.split_whitespace().next())
        .expect("address")
        .to_owned();
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let mut stdin = server.child.stdin.take().expect("stdin");
    let to_client = payload(300 * 1024 + 1, 9);
    let input = to_client.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).expect("server stdin"));
    let to_server = payload(200 * 1024 + 3, 10);
    let mut args = vec!["connect", &addr];
    let fp;
    if addr.starts_with("tls") {
        fp = server
            .stderr
            .wait_for("fingerprint: ")
            .rsplit("fingerprint: ")
            .next()
            .expect("fingerprint")
            .trim()
            .to_owned();
        args.extend_from_slice(&["--pin-sha256", &fp]);
    }
    args.extend_from_slice(connect_extra);
    let client = run_with_input(&args, to_server.clone());
    writer.join().expect("writer");
    assert_eq!(code(client.status), 0, "{}", stderr(&client));
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
    out.wait_for_eof();
    assert!(client.stdout == to_client, "server to client differs");
    assert!(out.bytes() == to_server, "client to server differs");
}

#[test]
fn stdio_over_tls() {
    stdio_roundtrip("tls://127.0.0.1:0", &[]);
}

#[test]
fn stdio_over_a_unix_socket() {
    let dir = temp_dir();
    let path = format!("unix://{}", dir.path().join("s.sock").display());
    stdio_roundtrip(&path, &[]);
}

#[test]
fn stdio_over_tls_over_a_unix_socket() {
    let dir = temp_dir();
    let path = format!("tls+unix://{}", dir.path().join("s.sock").display());
    stdio_roundtrip(&path, &[]);
}

/// A TLS handshake that fails is the one connection's outcome: exit 8.
#[test]
fn once_exits_8_when_the_tls_handshake_fails() {
    let mut server = start(
        &["serve", "tls://127.0.0.1:0", "--echo", "--once"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut s = connect(&listening(&server).replace("tls://", ""));
    s.write_all(b"not a client hello\r\n\r\n").expect("write");
    let _ = s.read(&mut [0u8; 64]);
    assert_eq!(code(server.wait()), 8, "{}", server.stderr.text());
}

/// `proxy --once`: a client that does not speak a proxy protocol is the
/// one connection's failure (a protocol error: 10).
#[test]
fn once_proxy_exits_with_the_connection_outcome() {
    let mut proxy = start(
        &["proxy", "127.0.0.1:0", "--once"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut s = connect(&listening(&proxy));
    s.write_all(b"\x16 hello?\r\n\r\n").expect("write");
    let _ = read_to_end(&mut s);
    assert_eq!(code(proxy.wait()), 10, "{}", proxy.stderr.text());
}

/// A client idling past --idle-timeout is closed; the broker carries on,
/// and at SIGTERM every client closes at once.
#[test]
fn broker_survives_an_idle_client_and_closes_all_at_shutdown() {
    let (mut server, addr, mut c) = hub_clients(&["--broker", "--idle-timeout", "1s"], 1);
    server.stderr.wait_for("user1: idle for 1.0s");
    assert_eq!(read_to_end(&mut c[0]), b"");
    let mut a = connect(&addr);
    server.stderr.wait_for("joined as user2");
    let mut b = connect(&addr);
    server.stderr.wait_for("joined as user3");
    a.write_all(b"hi").expect("a");
    assert_eq!(read_n(&mut b, 2), b"hi");
    server.signal(libc::SIGTERM);
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
    assert_eq!(read_to_end(&mut a), b"");
}

/// SIGTERM (Ctrl-C's SIGINT alike) ends a --stdio session at once, not
/// after the drain timeout, and exits 0.
#[test]
fn a_signal_ends_a_stdio_session_at_once() {
    let mut server = start(
        &["serve", "127.0.0.1:0", "--stdio", "--drain-timeout", "60s"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let addr = listening(&server);
    let out = Collected::collect(server.child.stdout.take().expect("stdout"));
    let mut s = connect(&addr);
    s.write_all(b"hi").expect("write");
    out.wait_for_len(2);
    let start = std::time::Instant::now();
    server.signal(libc::SIGTERM);
    assert_eq!(code(server.wait()), 0, "{}", server.stderr.text());
    assert!(start.elapsed() < Duration::from_secs(30), "drained");
    assert_eq!(read_to_end(&mut s), b"");
}

/// With -k, stdin waits for the slowest client; one that stops reading
/// for good is closed by --idle-timeout, and the others get everything.
#[test]
fn stdio_keep_open_closes_a_client_that_stops_reading_at_the_idle_timeout() {
    let mut server = start(
        &[
            "serve",
            "127.0.0.1:0",
            "--stdio",
            "-k",
            "--idle-timeout",
            "2s",
        ],
        Stdio::piped(),
        Stdio::null(),
    );
    let addr = listening(&server);
    let mut a = connect(&addr);
    server.stderr.wait_for("joined as user1");
    let silent =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    silent.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    let to: std::net::SocketAddr = addr.parse().expect("address");
    silent.connect(&to.into()).expect("connect");
    server.stderr.wait_for("joined as user2");
    // The reading client keeps itself from idling out by talking.
    let mut talk = a.try_clone().expect("clone");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let talker = std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = talk.write_all(b".");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let data = payload(8 * 1024 * 1024, 12);
    let mut stdin = server.child.stdin.take().expect("stdin");
    let input = data.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&input).expect("server stdin");
        stdin
    });
    let got = read_n(&mut a, data.len());
    server.stderr.wait_for("user2: idle for 2.0s");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    talker.join().expect("talker");
    drop(writer.join().expect("writer"));
    assert!(got == data, "the reading client got other bytes");
    drop(silent);
}

/// Behind --accept-proxy, a connection without a valid header is the one
/// connection's failure: exit 10.
#[test]
fn once_exits_10_without_a_proxy_protocol_header() {
    let mut server = start(
        &["serve", "127.0.0.1:0", "--echo", "--once", "--accept-proxy"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut s = connect(&listening(&server));
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    let _ = read_to_end(&mut s);
    assert_eq!(code(server.wait()), 10, "{}", server.stderr.text());
}

/// --max-conns bounds the broker's clients: a third waits in the backlog
/// until one leaves, then joins.
#[test]
fn broker_respects_max_conns() {
    let (server, addr, mut c) = hub_clients(&["--broker", "--max-conns", "2"], 2);
    let mut third = connect(&addr);
    server.stderr.wait_for("connection limit reached (2)");
    assert_eq!(server.stderr.count("joined as user3"), 0);
    let first = c.remove(0);
    drop(first);
    server.stderr.wait_for("joined as user3");
    c[0].write_all(b"hello").expect("write");
    assert_eq!(read_n(&mut third, 5), b"hello");
}
