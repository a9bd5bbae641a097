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

/// Runs `netcrab bench ARGS... --json` and parses the report.
fn bench_report(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(&all);
    assert_exit(&out, 0, "");
    serde_json::from_slice(&out.stdout).expect("bench json")
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn bench_shards_merged_equal_one_run_of_the_same_total() {
    let server = Server::start(&["--echo"]);
    let addr = server.addr_str();
    let dir = temp_dir();
    // Every shard starts at the same moment, a little ahead.
    let start = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
    let start_secs = start
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs_f64();
    let start_at = format!("{start_secs:.3}");
    let common = ["-c", "5", "-n", "301", "--rate", "3000", "--size", "32"];
    let shards: Vec<_> = (1..=3)
        .map(|i| {
            let path = dir.path().join(format!("shard{i}.hlog"));
            let mut cmd = netcrab();
            cmd.arg("bench")
                .arg(&addr)
                .args(common)
                .args(["--shard", &format!("{i}/3"), "--start-at", &start_at])
                .arg("--histogram-out")
                .arg(&path)
                .arg("--json")
                .stdin(std::process::Stdio::null());
            (path, cmd.spawn_output())
        })
        .collect();
    let mut files = Vec::new();
    for (i, (path, child)) in shards.into_iter().enumerate() {
        let out = child.join().expect("shard");
        assert_exit(&out, 0, "");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        // -c 5 -n 301 --rate 3000 in 3: 2+2+1 connections, 101+100+100
        // requests, 1200+1200+600 req/s.
        let (c, n, rate) = [(2, 101, 1200.0), (2, 100, 1200.0), (1, 100, 600.0)][i];
        assert_eq!(
            num(&r["workload"]["connections"]),
            c as f64,
            "shard {}",
            i + 1
        );
        assert_eq!(num(&r["requests"]["ok"]), n as f64, "shard {}", i + 1);
        assert_eq!(num(&r["rate"]["target_rps"]), rate, "shard {}", i + 1);
        // No shard started before --start-at (the log's StartTime).
        let log = std::fs::read_to_string(&path).expect("histogram log");
        let started: f64 = log
            .lines()
            .find_map(|l| l.strip_prefix("#[StartTime: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no StartTime in {log}"));
        assert!(started >= start_secs - 0.001, "{started} < {start_secs}");
        files.push(path);
    }
    let mut merge = vec!["merge".to_owned()];
    merge.extend(files.iter().map(|p| p.to_string_lossy().into_owned()));
    let merge: Vec<&str> = merge.iter().map(String::as_str).collect();
    let merged = bench_report(&merge);
    let whole = bench_report(&[
        &addr, common[0], common[1], common[2], common[3], common[4], common[5], common[6],
        common[7],
    ]);
    // Counts exactly; the schedule's total rate exactly (the target, not
    // the achieved rate, which is timing).
    for key in [
        &["requests", "ok"][..],
        &["requests", "errors"],
        &["latency", "count"],
        &["workload", "connections"],
        &["throughput", "bytes_sent"],
        &["throughput", "bytes_received"],
        &["rate", "target_rps"],
    ] {
        let get = |v: &serde_json::Value| key.iter().fold(v.clone(), |v, k| v[*k].clone());
        assert_eq!(get(&merged), get(&whole), "{key:?}");
    }
    assert_eq!(num(&merged["merged_runs"]), 3.0);
}

/// `Command::output` on a thread, so several processes run at once.
trait SpawnOutput {
    fn spawn_output(&mut self) -> std::thread::JoinHandle<std::process::Output>;
}

impl SpawnOutput for std::process::Command {
    fn spawn_output(&mut self) -> std::thread::JoinHandle<std::process::Output> {
        let child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::spawn(move || child.wait_with_output().expect("wait"))
    }
}

#[test]
fn bench_start_at_in_the_past_starts_now_with_a_warning() {
    let server = Server::start(&["--echo"]);
    let out = run(&[
        "bench",
        &server.addr_str(),
        "-c",
        "1",
        "-n",
        "3",
        "--start-at",
        "2020-01-01T00:00:00Z",
    ]);
    assert_exit(&out, 0, "");
    assert!(
        stderr(&out).contains("has passed: starting now"),
        "{}",
        stderr(&out)
    );
    let out = run(&["bench", "--start-at", "soon"]);
    assert_exit(&out, 2, "--start-at");
}

#[test]
fn the_bash_completion_completes_commands_and_flags() {
    let script = contrib().join("completions/netcrab.bash");
    let complete = |words: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _netcrab netcrab \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; echo \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .expect("run bash");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(complete("netcrab se"), "serve");
    assert!(complete("netcrab serve --log-f").contains("--log-format"));
    assert_eq!(complete("netcrab completions fi"), "fish");
}

#[test]
fn serve_keeps_tls_over_a_socket_activated_listener() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let proc = socket_activated(&addr, &["serve", "--tls", "--echo"]);
    let out = run_with_input(
        &["connect", "--tls", "--insecure", &addr],
        b"over tls".to_vec(),
    );
    assert_exit(&out, 0, "");
    assert_eq!(out.stdout, b"over tls");
    proc.stderr.wait_for(&format!("listening on tls://{addr}"));
}
