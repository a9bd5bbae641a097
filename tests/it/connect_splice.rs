//! `netcrab connect`'s zero-copy stdio on Linux (splice(2) between the stdio
//! pipes and the socket, sendfile(2) from a stdin file) against the
//! portable copy (`--no-splice`): the same bytes and the same behaviour
//! either way. `-v` logs which path was taken, and each test checks it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpListener};
use std::process::{Output, Stdio};

use crate::util::*;

const SPLICE_BOTH: &str = "connect: splice path (upload: splice, download: splice)";
const COPY: &str = "connect: copy path (--no-splice)";

/// Runs `connect -v ADDR EXTRA...` with `input` on a stdin pipe.
fn connect_piped(addr: &str, extra: &[&str], input: Vec<u8>) -> Output {
    let mut args = vec!["-v", "connect", addr];
    args.extend_from_slice(extra);
    run_with_input(&args, input)
}

fn assert_path(out: &Output, path: &str) {
    assert!(
        stderr(out).contains(path),
        "wanted {path:?} in:\n{}",
        stderr(out)
    );
}

fn echo_through(extra: &[&str], path: &str) {
    let server = Server::start(&["--echo"]);
    let data = payload(6 * 1024 * 1024 + 17, 7);
    let out = connect_piped(&server.addr_str(), extra, data.clone());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_path(&out, path);
    assert!(
        out.stdout == data,
        "{} of {} bytes came back",
        out.stdout.len(),
        data.len()
    );
}

#[test]
fn echo_byte_for_byte_with_splice() {
    echo_through(&[], SPLICE_BOTH);
}

#[test]
fn echo_byte_for_byte_with_copy() {
    echo_through(&["--no-splice"], COPY);
}

/// At stdin EOF the connection is half-closed after the last byte, and what
/// the peer sends afterwards (here several MB) still arrives in full.
fn half_close(extra: &[&str], path: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("half-close peer");
    let addr = listener.local_addr().expect("half-close peer");
    let reply = payload(3 * 1024 * 1024, 11);
    let sent = reply.clone();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("half-close peer");
        let got = read_to_end(&mut s); // returns only once the client half-closed
        s.write_all(format!("got {} bytes\n", got.len()).as_bytes())
            .expect("half-close peer");
        s.write_all(&sent).expect("half-close peer");
        s.shutdown(Shutdown::Write).expect("half-close peer");
        got
    });
    let data = payload(2 * 1024 * 1024 + 5, 3);
    let out = connect_piped(&addr.to_string(), extra, data.clone());
    let got = peer.join().expect("half-close peer");
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_path(&out, path);
    assert!(
        got == data,
        "peer got {} of {} bytes",
        got.len(),
        data.len()
    );
    let mut want = format!("got {} bytes\n", data.len()).into_bytes();
    want.extend_from_slice(&reply);
    assert!(
        out.stdout == want,
        "{} of {} bytes",
        out.stdout.len(),
        want.len()
    );
    assert!(
        stderr(&out).contains(&format!("sent {} bytes; done sending", data.len())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn half_close_with_splice() {
    half_close(&[], SPLICE_BOTH);
}

#[test]
fn half_close_with_copy() {
    half_close(&["--no-splice"], COPY);
}

/// stdin a regular file: sendfile(2), from the file's current offset (as
/// reading it would), to its end.
fn from_a_file(extra: &[&str], path: &str) {
    let server = Server::start(&["--echo"]);
    let data = payload(5 * 1024 * 1024 + 3, 5);
    let mut file = tempfile::tempfile().expect("stdin file");
    file.write_all(&data).expect("stdin file");
    // Whoever handed the file over already read its first 1000 bytes.
    file.seek(SeekFrom::Start(1000)).expect("stdin file");
    let mut child = netcrab()
        .args(["-v", "connect", &server.addr_str()])
        .args(extra)
        .stdin(Stdio::from(file))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stdin file");
    let stdout = Collected::collect(child.stdout.take().expect("stdin file"));
    let stderr_lines = Lines::collect(child.stderr.take().expect("stdin file"));
    let mut proc = Proc {
        child,
        stderr: stderr_lines,
    };
    let status = proc.wait();
    assert_eq!(code(status), 0, "{}", proc.stderr.text());
    proc.stderr.wait_for(path);
    let got = stdout.wait_for_len(data.len() - 1000);
    assert!(
        got == data[1000..],
        "{} of {} bytes",
        got.len(),
        data.len() - 1000
    );
}

#[test]
fn stdin_file_with_sendfile() {
    from_a_file(
        &[],
        "connect: splice path (upload: sendfile, download: splice)",
    );
}

#[test]
fn stdin_file_with_copy() {
    from_a_file(&["--no-splice"], COPY);
}

/// The stdio descriptors are shared with other processes: the zero-copy
/// path must not switch them to O_NONBLOCK (read from /proc while the
/// connection is up: `flags:` is octal, O_NONBLOCK is 04000).
#[test]
fn stdin_and_stdout_stay_blocking() {
    let server = Server::start(&["--echo"]);
    let mut client = Client::start(&["-v", "connect", &server.addr_str()]);
    client.send(b"ping");
    client.stdout.wait_for_len(4);
    client.proc.stderr.wait_for(SPLICE_BOTH);
    for fd in [0, 1] {
        let info = std::fs::read_to_string(format!("/proc/{}/fdinfo/{fd}", client.proc.pid()))
            .expect("fdinfo");
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap_or_else(|| panic!("no flags in {info}"));
        assert_eq!(flags & 0o4000, 0, "fd {fd} is non-blocking: {info}");
    }
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.proc.stderr.text());
    assert_eq!(client.stdout.bytes(), b"ping");
}

/// A reader that goes away (`| head -c 5`) ends the command with success,
/// even in the middle of a large download spliced into the pipe.
#[test]
fn a_closed_stdout_pipe_is_not_an_error_with_splice() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // Much more than the pipe and socket buffers hold; fails once the
        // client is gone.
        let big = vec![b'x'; 64 * 1024 * 1024];
        let _ = s.write_all(&big);
    });
    let mut child = spawn_piped(&["-v", "connect", &addr.to_string()]);
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 5];
    stdout.read_exact(&mut buf).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    peer.join().unwrap();
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_path(&out, SPLICE_BOTH);
}

/// Nothing moving either way on the splice path still trips
/// --idle-timeout (exit 5).
#[test]
fn idle_timeout_with_splice() {
    let server = Server::start(&["--echo"]);
    let mut client = Client::start(&[
        "-v",
        "connect",
        &server.addr_str(),
        "--idle-timeout",
        "300ms",
    ]);
    client.send(b"x");
    client.stdout.wait_for_len(1);
    assert_eq!(client.wait(), 5, "{}", client.proc.stderr.text());
    client.proc.stderr.wait_for(SPLICE_BOTH);
    client.proc.stderr.wait_for("idle for 300ms");
}

/// Unix stream sockets take the same path.
#[test]
fn unix_socket_echo_with_splice() {
    let dir = temp_dir();
    let addr = format!("unix://{}", dir.path().join("echo.sock").display());
    let _server = Listening::start(&["serve", &addr, "--echo"]);
    let data = payload(3 * 1024 * 1024 + 1, 9);
    let out = connect_piped(&addr, &[], data.clone());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_path(&out, SPLICE_BOTH);
    assert!(
        out.stdout == data,
        "{} of {} bytes",
        out.stdout.len(),
        data.len()
    );
}

/// A terminal-less stdout that is not a pipe (/dev/null) keeps the copy for
/// the download while the upload is spliced.
#[test]
fn stdout_not_a_pipe_copies_the_download() {
    let server = Server::start(&["--echo"]);
    let mut child = netcrab()
        .args(["-v", "connect", &server.addr_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&payload(1024 * 1024, 1)));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_path(
        &out,
        "connect: splice path (upload: splice, download: copy)",
    );
    assert!(
        stderr(&out).contains("received 1048576 bytes"),
        "{}",
        stderr(&out)
    );
}

/// `--no-shutdown --wait` on the splice path: the peer never sees EOF, so
/// the download would never end; --wait ends it after stdin's EOF.
#[test]
fn wait_bounds_the_download_with_splice() {
    let server = Server::start(&["--echo"]);
    let mut client = Client::start(&[
        "-v",
        "connect",
        &server.addr_str(),
        "--no-shutdown",
        "--wait",
        "300ms",
    ]);
    client.send(b"ping");
    client.stdout.wait_for_len(4);
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.proc.stderr.text());
    client.proc.stderr.wait_for(SPLICE_BOTH);
    client.proc.stderr.wait_for("--wait elapsed");
    assert_eq!(client.stdout.bytes(), b"ping");
}

/// The peer sends a line and half-closes while our stdin stays open: stdout
/// must reach its end (for a `| consumer`) while connect still runs, and
/// what stdin sends afterwards must still reach the peer.
fn peer_eof_closes_stdout(extra: &[&str], path: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.write_all(b"greeting\n").expect("write");
        conn.shutdown(Shutdown::Write).expect("half-close");
        read_to_end(&mut conn)
    });
    let mut args = vec!["-v", "connect", addr.as_str()];
    args.extend_from_slice(extra);
    let mut child = spawn_piped(&args);
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let stderr_lines = Lines::collect(child.stderr.take().expect("stderr"));
    // Read stdout to its end in a thread, so a missing end fails the test
    // after PATIENCE instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = tx.send(stdout.read_to_end(&mut out).map(|_| out));
    });
    let out = rx
        .recv_timeout(PATIENCE)
        .expect("stdout reached its end while stdin is open")
        .expect("read stdout");
    assert_eq!(out, b"greeting\n");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "connect exited instead of sending the rest of stdin"
    );
    stdin.write_all(b"still sending\n").expect("write stdin");
    drop(stdin);
    let status = child.wait().expect("wait");
    assert_eq!(code(status), 0, "{}", stderr_lines.text());
    assert_eq!(peer.join().expect("peer"), b"still sending\n");
    // The collector may still be reading the last lines: wait for them.
    stderr_lines.wait_for(path);
    stderr_lines.wait_for("the peer finished sending; stdout closed");
}

#[test]
fn peer_eof_closes_stdout_on_the_splice_path() {
    peer_eof_closes_stdout(&[], SPLICE_BOTH);
}

#[test]
fn peer_eof_closes_stdout_on_the_copy_path() {
    peer_eof_closes_stdout(&["--no-splice"], COPY);
}
