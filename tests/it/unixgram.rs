//! `unixgram://`: Unix datagram sockets for serve (answers, exec) and
//! connect (`-U -u`), the client's private socket file and its removal,
//! and interoperability with Debian's `ncat -U -u`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// `connect -U -u PATH` with `args`, its temporary socket made under
/// `tmp` (so the test can see that it is gone afterwards).
fn connect_in(tmp: &Path, path: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = netcrab();
    cmd.args(["connect", "-U", "-u", path])
        .args(args)
        .env("XDG_RUNTIME_DIR", tmp)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null());
    cmd.output().expect("run netcrab")
}

fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .expect("read temp dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn serve_and_connect_over_a_unix_datagram_socket() {
    let dir = temp_dir();
    let tmp = temp_dir();
    let path = dir.path().join("dgram.sock");
    let path = path.to_str().expect("utf-8");
    let mut server = Listening::start(&["serve", "-U", "-u", path, "--echo"]);
    assert_eq!(server.addr, format!("unixgram://{path}"));
    let out = connect_in(tmp.path(), path, &["--send", "hello"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello");
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
    // The scheme works as well as the flags.
    let out = run(&["connect", &server.addr, "--send", "again"]);
    assert_eq!(out.stdout, b"again");
    server.proc.signal(libc::SIGTERM);
    assert_eq!(code(server.proc.wait()), 0);
    assert!(
        !Path::new(path).exists(),
        "the server's socket file is left"
    );
}

#[test]
fn the_clients_socket_file_is_removed_on_error_too() {
    let dir = temp_dir();
    let tmp = temp_dir();
    let path = dir.path().join("nobody.sock");
    let out = connect_in(tmp.path(), path.to_str().expect("utf-8"), &["--send", "x"]);
    assert_exit(&out, 4, "refused");
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}

#[test]
fn the_clients_socket_file_is_removed_when_interrupted() {
    let dir = temp_dir();
    let tmp = temp_dir();
    let path = dir.path().join("int.sock");
    let path = path.to_str().expect("utf-8");
    let _server = Listening::start(&["serve", "-U", "-u", path, "--echo"]);
    let mut client = netcrab()
        .args(["connect", "-U", "-u", path])
        .env("XDG_RUNTIME_DIR", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn netcrab");
    // The answer to a datagram proves the socket file is there.
    let mut stdin = client.stdin.take().expect("stdin");
    stdin.write_all(b"up\n").expect("write");
    let mut stdout = client.stdout.take().expect("stdout");
    let mut got = [0u8; 3];
    stdout.read_exact(&mut got).expect("echo");
    assert_eq!(leftovers(tmp.path()).len(), 1);
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(client.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0);
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = client.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = client.kill();
            panic!("connect did not exit on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}

#[test]
fn abstract_unix_datagram_sockets() {
    let name = format!("netcrab-it-dgram-{}", std::process::id());
    let addr = format!("unixgram:@{name}");
    let server = Listening::start(&["serve", &addr, "--reply", "pong"]);
    assert_eq!(server.addr, addr);
    let out = run(&["connect", &addr, "--send", "ping"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"pong");
}

#[test]
fn a_program_per_unix_datagram_peer() {
    let dir = temp_dir();
    let path = dir.path().join("exec.sock");
    let path = path.to_str().expect("utf-8");
    let _server = Listening::start(&[
        "serve",
        "-U",
        "-u",
        path,
        "--sh-exec",
        "read l; echo \"$NETCRAB_PROTO got $l\"",
    ]);
    let out = run(&["connect", "-U", "-u", path, "--send", "x\n"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"unixgram got x\n");
}

#[test]
fn ncat_talks_to_a_unix_datagram_server() {
    if Command::new("ncat").arg("--version").output().is_err() {
        eprintln!("ncat not installed (scripts/install-test-deps.sh); skipped");
        return;
    }
    let dir = temp_dir();
    let path = dir.path().join("ncat.sock");
    let path = path.to_str().expect("utf-8");
    let _server = Listening::start(&["serve", "-U", "-u", path, "--echo"]);
    let mut ncat = Command::new("ncat")
        .args(["-U", "-u", path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ncat");
    let mut stdin = ncat.stdin.take().expect("stdin");
    stdin.write_all(b"from ncat\n").expect("write");
    let mut stdout = ncat.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 10];
        let _ = tx.send(stdout.read_exact(&mut buf).map(|()| buf));
    });
    let got = rx.recv_timeout(PATIENCE).expect("ncat printed nothing");
    drop(stdin);
    let _ = ncat.kill();
    let _ = ncat.wait();
    assert_eq!(&got.expect("read"), b"from ncat\n");
}

#[test]
fn netcrab_talks_to_an_ncat_unix_datagram_server() {
    if Command::new("ncat").arg("--version").output().is_err() {
        eprintln!("ncat not installed (scripts/install-test-deps.sh); skipped");
        return;
    }
    let dir = temp_dir();
    let path = dir.path().join("ncat-server.sock");
    let path_str = path.to_str().expect("utf-8");
    // ncat's datagram listener answers with its stdin: "pong\n", once the
    // first datagram has arrived.
    let mut ncat = Command::new("ncat")
        .args(["-l", "-U", "-u", path_str])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ncat");
    let deadline = std::time::Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "ncat never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stdin = ncat.stdin.take().expect("stdin");
    let client = Client::start(&["connect", "-U", "-u", path_str, "--wait", "20s"]);
    let mut client = client;
    client.send(b"ping\n");
    let mut stdout = ncat.stdout.take().expect("stdout");
    let mut got = [0u8; 5];
    stdout.read_exact(&mut got).expect("ncat received");
    assert_eq!(&got, b"ping\n");
    stdin.write_all(b"pong\n").expect("answer");
    assert_eq!(client.stdout.wait_for_len(5), b"pong\n");
    let _ = ncat.kill();
    let _ = ncat.wait();
}
