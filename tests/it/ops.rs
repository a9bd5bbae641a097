//! Operations (issue 15): the checked-in completions and man pages match
//! what the binary generates, and `--log-format json` writes one object per
//! line with the connection's fields.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;

use crate::util::*;

/// How to bring contrib/ up to date, printed when it is stale.
const REGENERATE: &str = "contrib/ is stale: run scripts/gen-assets.sh and commit the result";

fn contrib() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib"))
}

#[test]
fn checked_in_completions_are_current() {
    for (shell, file) in [
        ("bash", "netcrab.bash"),
        ("zsh", "_netcrab"),
        ("fish", "netcrab.fish"),
        ("elvish", "netcrab.elv"),
        ("powershell", "_netcrab.ps1"),
    ] {
        let out = run(&["completions", shell]);
        assert_exit(&out, 0, "");
        assert!(!out.stdout.is_empty(), "{shell}: empty");
        let path = contrib().join("completions").join(file);
        let checked_in = std::fs::read(&path).unwrap_or_default();
        assert!(
            checked_in == out.stdout,
            "{} differs from `netcrab completions {shell}`: {REGENERATE}",
            path.display()
        );
    }
}

#[test]
fn checked_in_man_pages_are_current() {
    let dir = temp_dir();
    let out = netcrab()
        .arg("man")
        .arg(dir.path())
        .output()
        .expect("run netcrab man");
    assert_exit(&out, 0, "");
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".1"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let generated = names(dir.path());
    for page in ["netcrab.1", "netcrab-serve.1", "netcrab-bench.1"] {
        assert!(generated.iter().any(|n| n == page), "{page} missing");
    }
    let man = contrib().join("man");
    assert_eq!(names(&man), generated, "{REGENERATE}");
    for name in generated {
        let want = std::fs::read(dir.path().join(&name)).expect("generated page");
        let have = std::fs::read(man.join(&name)).unwrap_or_default();
        assert!(have == want, "contrib/man/{name} differs: {REGENERATE}");
    }
}

#[test]
fn completions_name_the_commands_and_flags() {
    let out = run(&["completions", "bash"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "relay", "bench", "--log-format", "--max-conns"] {
        assert!(text.contains(word), "{word} not completed");
    }
    let out = run(&["completions", "tcsh"]);
    assert_exit(&out, 2, "tcsh");
}

/// Parses every stderr line as a JSON object; panics on one that is not.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not json ({e}): {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

/// The address in a JSON `listening on ADDR` line.
fn json_listening(proc: &Proc) -> String {
    let line = proc.stderr.wait_for("listening on ");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    let msg = v["message"].as_str().expect("message");
    let rest = msg.trim_start_matches("listening on ");
    rest.split_whitespace().next().unwrap_or(rest).to_owned()
}

#[test]
fn json_logs_carry_time_level_message() {
    let proc = Proc::start(&["--log-format", "json", "serve", "127.0.0.1:0"]);
    let addr = json_listening(&proc);
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(b"hi \"there\"\n").expect("send");
    let mut reply = [0u8; 12];
    s.read_exact(&mut reply).expect("reply");
    proc.stderr.wait_for("recv ");
    let lines = json_lines(&proc.stderr.text());
    let first = &lines[0];
    assert_eq!(first["level"], "info");
    let time = first["time"].as_str().expect("time");
    assert!(
        time.len() == 27 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    let keys: Vec<&String> = first.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["level", "message", "time"], "{first}");
    // A message with quotes and a newline stays one valid line.
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("hi \\\"there\\\"") || m.contains("hi \"there\""))),
        "{lines:?}"
    );
}

#[test]
fn json_logs_give_the_relays_connection_line_as_fields() {
    let upstream = Server::start(&["--echo"]);
    let relay = Proc::start(&[
        "--log-format",
        "json",
        "relay",
        "127.0.0.1:0",
        &upstream.addr_str(),
    ]);
    let addr = json_listening(&relay);
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(&[7u8; 1000]).expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let back = read_to_end(&mut s);
    assert_eq!(back.len(), 1000);
    drop(s);
    relay.stderr.wait_for("closed by both sides");
    let lines = json_lines(&relay.stderr.text());
    let line = lines
        .iter()
        .find(|l| l["outcome"] == "closed by both sides")
        .expect("connection line");
    assert_eq!(line["level"], "info");
    assert_eq!(line["bytes_up"], 1000);
    assert_eq!(line["bytes_down"], 1000);
    assert!(line["duration_ms"].is_u64(), "{line}");
    assert!(
        line["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))
    );
    assert_eq!(line["upstream"], upstream.addr_str());
    assert!(
        line["message"]
            .as_str()
            .is_some_and(|m| m.contains("up 1000 bytes"))
    );
}

#[test]
fn json_logs_give_serves_close_line_as_fields() {
    let proc = Proc::start(&[
        "-v",
        "--log-format",
        "json",
        "serve",
        "127.0.0.1:0",
        "--echo",
    ]);
    let addr = json_listening(&proc);
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(b"12345").expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut s), b"12345");
    proc.stderr.wait_for("closed (");
    let lines = json_lines(&proc.stderr.text());
    let line = lines
        .iter()
        .find(|l| l["outcome"] == "closed")
        .expect("close line");
    assert_eq!(line["level"], "debug");
    assert_eq!(line["bytes_in"], 5);
    assert_eq!(line["bytes_out"], 5);
    assert!(line["peer"].is_string(), "{line}");
}

#[test]
fn text_logs_are_unchanged_by_the_fields() {
    let upstream = Server::start(&["--echo"]);
    let relay = Server::start_exact(&["relay", "127.0.0.1:0", &upstream.addr_str()]);
    let mut s = relay.connect();
    s.shutdown(Shutdown::Write).expect("shutdown");
    read_to_end(&mut s);
    let line = relay.proc.stderr.wait_for("closed by both sides");
    assert!(line.starts_with("netcrab: 127.0.0.1:"), "{line}");
    assert!(!line.contains("bytes_up"), "{line}");
}

/// Starts `systemd-socket-activate -l LISTEN --fdname=web netcrab ARGS...`
/// and waits until it listens (netcrab starts on the first connection).
fn socket_activated(listen: &str, args: &[&str]) -> Proc {
    let mut cmd = std::process::Command::new("systemd-socket-activate");
    cmd.args(["-l", listen, "--fdname=web", env!("CARGO_BIN_EXE_netcrab")])
        .args(args);
    let proc = Proc::start_with(&mut cmd);
    proc.stderr.wait_for("Listening on");
    proc
}

#[test]
fn serve_takes_a_socket_activated_tcp_listener() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let proc = socket_activated(&addr, &["serve", "--echo"]);
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(b"activated").expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut s), b"activated");
    let line = proc.stderr.wait_for("socket activation");
    assert!(line.contains("passed socket (web)"), "{line}");
    // The bound address reported is the passed socket's, not the default.
    proc.stderr.wait_for(&format!("listening on {addr}"));
}

#[test]
fn relay_takes_a_socket_activated_unix_listener() {
    let upstream = Server::start(&["--echo"]);
    let dir = temp_dir();
    let path = dir.path().join("relay.sock");
    let path_str = path.to_str().expect("utf-8 path");
    let proc = socket_activated(path_str, &["relay", "127.0.0.1:0", &upstream.addr_str()]);
    let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    s.write_all(b"through").expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut s), b"through");
    proc.stderr
        .wait_for(&format!("listening on unix://{path_str}"));
    proc.stderr.wait_for("closed by both sides");
}

/// Receives one datagram on `socket`, failing after [`PATIENCE`].
fn recv_notify(socket: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn sd_notify_says_ready_then_stopping() {
    let dir = temp_dir();
    let path = dir.path().join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify socket");
    socket.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let proc = Proc::start_with(
        netcrab()
            .args(["serve", "127.0.0.1:0", "--echo"])
            .env("NOTIFY_SOCKET", &path),
    );
    assert_eq!(recv_notify(&socket), "READY=1");
    proc.stderr.wait_for("listening on ");
    proc.signal(libc::SIGTERM);
    assert_eq!(recv_notify(&socket), "STOPPING=1");
    let mut proc = proc;
    assert!(proc.wait().success());
}

#[test]
fn sd_notify_reaches_an_abstract_socket_for_relay() {
    let name = format!("netcrab-notify-{}", std::process::id());
    let addr = {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name")
    };
    let socket = std::os::unix::net::UnixDatagram::bind_addr(&addr).expect("bind");
    socket.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let upstream = Server::start(&["--echo"]);
    let _relay = Proc::start_with(
        netcrab()
            .args(["relay", "127.0.0.1:0", &upstream.addr_str()])
            .env("NOTIFY_SOCKET", format!("@{name}")),
    );
    assert_eq!(recv_notify(&socket), "READY=1");
}
