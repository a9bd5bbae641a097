//! `--exec`, `--sh-exec` and `--pty`: a program per connection on serve
//! (TCP, TLS, Unix sockets), a program with the connection on connect;
//! end of stream both ways, the environment, descriptors, signals, limits,
//! and interoperability with Debian's `ncat`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::tls::{Pki, Usage};
use crate::util::*;

/// Starts `serve 127.0.0.1:0` running `--sh-exec COMMAND` with `args`.
fn sh_server(command: &str, args: &[&str]) -> Server {
    let mut all = vec!["serve", "127.0.0.1:0", "--sh-exec", command];
    all.extend_from_slice(args);
    Server::start_exact(&all)
}

/// Sends `input` on a new connection, half-closes, and reads to the end.
fn converse(server: &Server, input: &[u8]) -> Vec<u8> {
    let mut s = server.connect();
    let writer = {
        let mut s = s.try_clone().expect("clone");
        let input = input.to_vec();
        std::thread::spawn(move || {
            s.write_all(&input).expect("write");
            s.shutdown(Shutdown::Write).expect("half-close");
        })
    };
    let out = read_to_end(&mut s);
    writer.join().expect("writer");
    out
}

/// The value of `NAME=value` in `env` output.
fn var<'a>(env: &'a str, name: &str) -> Option<&'a str> {
    env.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

/// The processes `pid` has started and not reaped (zombies included),
/// from every thread's `children` list.
fn children(pid: i32) -> Vec<String> {
    let mut all = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        all.extend(list.split_whitespace().map(str::to_owned));
    }
    all
}

/// Waits until `pid` has no children left (every program reaped).
fn wait_for_no_children(pid: i32) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = children(pid);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "children never reaped: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn output_written_after_the_peers_eof_is_not_cut() {
    let server = sh_server("cat; echo done", &[]);
    let input = payload(1 << 20, 7);
    let out = converse(&server, &input);
    assert_eq!(out.len(), input.len() + 5);
    assert!(out.starts_with(&input), "the echo differs");
    assert!(out.ends_with(b"done\n"));
    server
        .proc
        .stderr
        .wait_for("closed by both sides; program exited with code 0");
}

#[test]
fn exec_splits_words_without_a_shell() {
    let server = Server::start(&["--exec", "printf '%s|' 'a b' \"$HOME\" c\\ d"]);
    assert_eq!(converse(&server, b""), b"a b|$HOME|c d|");
}

#[test]
fn a_program_that_exits_at_once() {
    let server = sh_server("echo bye; exit 3", &[]);
    // The peer's data has nowhere to go: dropped, and the output arrives whole.
    let out = converse(&server, &payload(256 * 1024, 1));
    assert_eq!(out, b"bye\n");
    server.proc.stderr.wait_for("program exited with code 3");
    // A program with no output at all: the peer just sees the end.
    let server = Server::start(&["--exec", "true"]);
    let mut s = server.connect();
    assert_eq!(read_to_end(&mut s), b"");
}

#[test]
fn a_program_that_never_reads_does_not_grow_memory_and_goes_idle() {
    let server = sh_server("exec sleep 30", &["--idle-timeout", "1s"]);
    let rss = |pid: i32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS");
        line.split_whitespace()
            .nth(1)
            .expect("kB")
            .parse()
            .expect("number")
    };
    let before = rss(server.proc.pid());
    let mut s = server.connect();
    s.set_write_timeout(Some(PATIENCE)).expect("timeout");
    let start = Instant::now();
    // 64 MiB offered; the kernel's buffers take a few MiB, then writes block
    // until the idle timeout closes the connection.
    let chunk = vec![b'x'; 1 << 20];
    let mut written = 0usize;
    while written < 64 << 20 {
        match s.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    assert!(written < 64 << 20, "all of it was taken: {written} bytes");
    assert!(start.elapsed() < Duration::from_secs(10));
    server.proc.stderr.wait_for("idle timeout");
    server.proc.stderr.wait_for("killed by signal 15");
    let grown = rss(server.proc.pid()).saturating_sub(before);
    assert!(grown < 16 * 1024, "server grew by {grown} kB");
}

#[test]
fn two_hundred_programs_at_once() {
    let server = Server::start(&["--exec", "cat"]);
    let mut conns: Vec<TcpStream> = (0..200).map(|_| server.connect()).collect();
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(format!("conn {i}\n").as_bytes())
            .expect("write");
        s.shutdown(Shutdown::Write).expect("half-close");
    }
    for (i, s) in conns.iter_mut().enumerate() {
        assert_eq!(read_to_end(s), format!("conn {i}\n").as_bytes());
    }
    server
        .proc
        .stderr
        .wait_for_count("program exited with code 0", 200);
    wait_for_no_children(server.proc.pid());
}

#[test]
fn max_conns_bounds_the_programs() {
    let server = Server::start(&["--exec", "cat", "--max-conns", "1"]);
    let mut first = server.connect();
    first.write_all(b"one\n").expect("write");
    let mut buf = [0u8; 4];
    first.read_exact(&mut buf).expect("echo");
    // The second waits in the backlog: no program for it yet.
    let mut second = server.connect();
    second.write_all(b"two\n").expect("write");
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(second.read(&mut buf).is_err(), "served past the limit");
    first.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(read_to_end(&mut first), b"");
    second.set_read_timeout(Some(PATIENCE)).expect("timeout");
    second.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(read_to_end(&mut second), b"two\n");
}

#[test]
fn the_environment_describes_the_connection() {
    // A description of another connection in serve's own environment is
    // not passed on.
    let server = Server::from_proc(Proc::start_with(
        netcrab()
            .args(["serve", "127.0.0.1:0", "--exec", "env"])
            .env("NETCRAB_TLS_PEER_SUBJECT", "CN=forged")
            .env("NETCRAB_PEER_PID", "1"),
    ));
    let mut s = server.connect();
    let port = s.local_addr().expect("addr").port().to_string();
    s.shutdown(Shutdown::Write).expect("half-close");
    let env = String::from_utf8(read_to_end(&mut s)).expect("utf-8");
    assert_eq!(var(&env, "NETCRAB_PROTO"), Some("tcp"), "{env}");
    assert_eq!(var(&env, "NETCRAB_PEER_ADDR"), Some("127.0.0.1"));
    assert_eq!(var(&env, "NETCRAB_PEER_PORT"), Some(port.as_str()));
    assert_eq!(var(&env, "NETCRAB_LOCAL_ADDR"), Some("127.0.0.1"));
    let local_port = server.addr.port().to_string();
    assert_eq!(var(&env, "NETCRAB_LOCAL_PORT"), Some(local_port.as_str()));
    assert_eq!(var(&env, "NETCRAB_TLS_PEER_SHA256"), None);
    assert_eq!(var(&env, "NETCRAB_TLS_PEER_SUBJECT"), None);
    assert_eq!(var(&env, "NETCRAB_PEER_PID"), None);
}

#[test]
fn tls_programs_learn_the_client_certificate() {
    let pki = Pki::new();
    let client = pki
        .ca
        .issue(&pki.dir, "backup.client", &["backup.client"], Usage::Client);
    let server = Listening::start(&[
        "serve",
        "tls://127.0.0.1:0",
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
        "--client-ca",
        &pki.ca_file,
        "--exec",
        "env",
    ]);
    let out = run(&[
        "connect",
        &server.addr,
        "--ca",
        &pki.ca_file,
        "--cert",
        &client.cert,
        "--key",
        &client.key,
        "--send",
        "",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let env = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(var(&env, "NETCRAB_PROTO"), Some("tls"), "{env}");
    assert_eq!(
        var(&env, "NETCRAB_TLS_PEER_SUBJECT"),
        Some("CN=backup.client")
    );
    let fp = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            &client.cert,
        ])
        .output()
        .expect("openssl x509 (run scripts/install-test-deps.sh)");
    let fp = String::from_utf8(fp.stdout).expect("utf-8");
    let fp = fp.trim().rsplit('=').next().expect("fingerprint");
    assert_eq!(var(&env, "NETCRAB_TLS_PEER_SHA256"), Some(fp));
}

#[test]
fn programs_run_over_unix_sockets_and_tls_over_them() {
    let dir = temp_dir();
    let path = dir.path().join("exec.sock");
    let path = path.to_str().expect("utf-8");
    let server = Listening::start(&[
        "serve",
        "-U",
        path,
        "--sh-exec",
        "echo $NETCRAB_PROTO $NETCRAB_LOCAL_ADDR; cat",
    ]);
    let out = run_with_input(&["connect", "-U", path], b"hi\n".to_vec());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, format!("unix {path}\nhi\n").as_bytes());
    drop(server);

    let tls_path = dir.path().join("tls.sock");
    let tls_addr = format!("tls+unix://{}", tls_path.display());
    let server = Listening::start(&["serve", &tls_addr, "--sh-exec", "echo $NETCRAB_PROTO; cat"]);
    let line = server
        .proc
        .stderr
        .wait_for("tls certificate sha256 fingerprint: ");
    let fp = line.rsplit("fingerprint: ").next().expect("fingerprint");
    let out = run_with_input(
        &["connect", &tls_addr, "--pin-sha256", fp],
        b"secret\n".to_vec(),
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"tls+unix\nsecret\n");
}

#[test]
fn no_descriptor_leaks_into_programs() {
    // The program lists its own descriptors with what they are.
    let server = sh_server(
        "for f in /proc/$$/fd/*; do echo \"${f##*/} $(readlink $f)\"; done",
        &[],
    );
    // Another connection open meanwhile: its socket must not leak either.
    let _other = server.connect();
    let out = String::from_utf8(converse(&server, b"")).expect("utf-8");
    let fds: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once(' ')).collect();
    assert!(
        fds.iter().any(|(n, t)| *n == "0" && t.starts_with("pipe:")),
        "{out}"
    );
    assert!(
        fds.iter().any(|(n, t)| *n == "1" && t.starts_with("pipe:")),
        "{out}"
    );
    for (n, target) in &fds {
        assert!(
            !target.starts_with("socket:") && !target.starts_with("anon_inode:"),
            "descriptor {n} leaked into the program: {target}\n{out}"
        );
    }
}

#[test]
fn a_reset_peer_gets_its_program_terminated() {
    let server = sh_server(
        "trap 'echo got-sigterm >&2; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
        &[],
    );
    let mut s = server.connect();
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).expect("ready");
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(s);
    server.proc.stderr.wait_for("reset by peer");
    server.proc.stderr.wait_for("got-sigterm");
    server.proc.stderr.wait_for("program exited with code 7");
    wait_for_no_children(server.proc.pid());
}

#[test]
fn a_program_ignoring_sigterm_is_killed_after_the_grace_period() {
    let server = sh_server(
        "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        &["--kill-grace", "300ms"],
    );
    let mut s = server.connect();
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).expect("ready");
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(s);
    server.proc.stderr.wait_for("sending SIGKILL");
    server.proc.stderr.wait_for("program killed by signal 9");
}

#[test]
fn programs_still_running_at_the_drain_deadline_get_sigterm() {
    let mut server = sh_server(
        "trap 'echo drained-term >&2; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
        &["--drain-timeout", "300ms"],
    );
    let mut s = server.connect();
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).expect("ready");
    server.proc.signal(libc::SIGTERM);
    let status = server.proc.wait();
    assert_eq!(code(status), 0, "{}", server.proc.stderr.text());
    // The program was told, and reaped, before serve exited.
    let text = server.proc.stderr.text();
    assert!(text.contains("drained-term"), "{text}");
    assert!(text.contains("program exited with code 0"), "{text}");
}

#[test]
fn pty_gives_the_program_a_terminal() {
    let check = "if test -t 0 && test -t 1; then echo terminal; else echo pipes; fi";
    let server = sh_server(check, &["--pty"]);
    assert_eq!(converse(&server, b""), b"terminal\n");
    let server = sh_server(check, &[]);
    assert_eq!(converse(&server, b""), b"pipes\n");
    // The peer's end reaches the program as the terminal's EOF, after a
    // partial line too; output is byte-exact (no CRLF).
    let server = sh_server("read l; echo \"[$l]\"; cat; echo end", &["--pty"]);
    assert_eq!(converse(&server, b"one\ntwo"), b"[one]\ntwoend\n");
}

#[test]
fn connect_runs_a_program_with_the_connection() {
    let server = sh_server("read l; echo \"server got $l\"", &[]);
    let out = run(&[
        "connect",
        &server.addr_str(),
        "--sh-exec",
        "echo ping; read reply; echo \"$reply\" >&2; echo $NETCRAB_PROTO $NETCRAB_PEER_PORT >&2",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("server got ping"), "{err}");
    assert!(
        err.contains(&format!("tcp {}", server.addr.port())),
        "{err}"
    );
}

#[test]
fn connect_runs_a_program_over_datagrams() {
    let server = Listening::start(&["serve", "-u", "127.0.0.1:0", "--lines", "--reply", "pong"]);
    let out = run(&[
        "connect",
        &server.addr,
        "--idle-timeout",
        "10s",
        "--sh-exec",
        "echo ping; read r; echo \"got $r from $NETCRAB_PROTO\" >&2",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("got pong from udp"),
        "{}",
        stderr(&out)
    );
    // Nothing listens: the port-unreachable ends it, the program too.
    let port = free_port().to_string();
    let out = run(&[
        "connect",
        "-u",
        &format!("127.0.0.1:{port}"),
        "--idle-timeout",
        "10s",
        "--sh-exec",
        "echo ping; sleep 5",
    ]);
    assert_exit(&out, 4, "connection refused");
}

#[test]
fn a_missing_program_is_a_usage_error() {
    let out = run(&[
        "serve",
        "127.0.0.1:0",
        "--exec",
        "netcrab-no-such-program -x",
    ]);
    assert_exit(&out, 2, "not found on PATH");
    let out = run(&["serve", "127.0.0.1:0", "--exec", "'unterminated"]);
    assert_exit(&out, 2, "unterminated single quote");
    let out = run(&["serve", "127.0.0.1:0", "--echo", "--exec", "cat"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
    let out = run(&["serve", "127.0.0.1:0", "--pty"]);
    assert_exit(&out, 2, "--pty needs --exec or --sh-exec");
    let out = run(&[
        "serve",
        "127.0.0.1:0",
        "--exec",
        "cat",
        "--kill-grace",
        "2h",
    ]);
    assert_exit(&out, 2, "--kill-grace");
    let out = run(&["connect", "127.0.0.1:9", "--exec", "cat", "--send", "x"]);
    assert_exit(&out, 2, "--send does not apply");
}

#[test]
fn a_program_that_cannot_start_closes_its_connection() {
    let dir = temp_dir();
    let script = dir.path().join("greet.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
    let mode = |m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(m)).expect("chmod");
    };
    mode(0o755);
    let server = Server::start(&["--exec", script.to_str().expect("utf-8")]);
    assert_eq!(converse(&server, b""), b"hi\n");
    // No longer executable: logged, the connection closed, serving goes on.
    mode(0o644);
    assert_eq!(converse(&server, b""), b"");
    server.proc.stderr.wait_for("cannot start");
    mode(0o755);
    assert_eq!(converse(&server, b""), b"hi\n");
}

#[test]
fn a_program_open_to_the_network_is_warned_about() {
    // 192.0.2.1 (TEST-NET-1) is not on this host: the bind fails (exit
    // 9), after the warning; nothing is sent anywhere.
    let out = run(&["serve", "192.0.2.1:0", "--exec", "cat"]);
    assert_exit(&out, 9, "a program on the network is a door");
    let out = run(&[
        "serve",
        "192.0.2.1:0",
        "--exec",
        "cat",
        "--allow",
        "127.0.0.1",
    ]);
    assert!(!stderr(&out).contains("door"), "{}", stderr(&out));
    let server = Server::start(&["--exec", "cat"]);
    drop(server.connect());
    assert!(!server.proc.stderr.text().contains("door"));
}

#[test]
fn ncat_talks_to_a_program() {
    if Command::new("ncat").arg("--version").output().is_err() {
        eprintln!("ncat not installed (scripts/install-test-deps.sh); skipped");
        return;
    }
    let server = sh_server("cat; echo done", &[]);
    let out = Command::new("ncat")
        .args(["127.0.0.1", &server.addr.port().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"via ncat\n")?;
            child.wait_with_output()
        })
        .expect("ncat");
    assert_eq!(out.stdout, b"via ncat\ndone\n");
}

/// Receives one datagram on `socket` as text.
fn recv_text(socket: &std::net::UdpSocket) -> String {
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).expect("a datagram");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn udp_runs_a_program_per_peer() {
    let server = Listening::start(&[
        "serve",
        "-u",
        "127.0.0.1:0",
        "--sh-exec",
        "read l; echo \"$NETCRAB_PROTO $NETCRAB_PEER_PORT $l\"; cat",
        "--idle-timeout",
        "2s",
    ]);
    let target = server.addr.trim_start_matches("udp://").to_owned();
    let peers: Vec<std::net::UdpSocket> = (0..2)
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.set_read_timeout(Some(PATIENCE)).expect("timeout");
            s.connect(&target).expect("connect");
            s
        })
        .collect();
    for (i, peer) in peers.iter().enumerate() {
        peer.send(format!("first {i}\n").as_bytes()).expect("send");
    }
    for (i, peer) in peers.iter().enumerate() {
        let port = peer.local_addr().expect("addr").port();
        assert_eq!(recv_text(peer), format!("udp {port} first {i}\n"));
        // The same program gets the peer's next datagram.
        peer.send(b"again\n").expect("send");
        assert_eq!(recv_text(peer), "again\n");
    }
    // Idle programs expire: their stdin is closed, and cat exits.
    server
        .proc
        .stderr
        .wait_for_count("idle timeout; program exited with code 0", 2);
    wait_for_no_children(server.proc.pid());
    // A new datagram starts a new program.
    peers[0].send(b"back\n").expect("send");
    assert!(recv_text(&peers[0]).ends_with(" back\n"));
}

#[test]
fn udp_programs_are_bounded_by_max_conns() {
    let server = Listening::start(&[
        "serve",
        "-u",
        "127.0.0.1:0",
        "--exec",
        "cat",
        "--max-conns",
        "1",
    ]);
    let target = server.addr.trim_start_matches("udp://").to_owned();
    let first = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    first.set_read_timeout(Some(PATIENCE)).expect("timeout");
    first.send_to(b"one", &target).expect("send");
    assert_eq!(recv_text(&first), "one");
    let second = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    second.send_to(b"two", &target).expect("send");
    let mut buf = [0u8; 16];
    assert!(second.recv(&mut buf).is_err(), "a second program ran");
    assert_eq!(children(server.proc.pid()).len(), 1);
}
