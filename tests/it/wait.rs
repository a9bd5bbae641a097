//! `netcrab wait` against real servers (and ports nothing listens on).

use std::path::PathBuf;

use crate::util::*;

/// A path in the temp directory unique to this test run.
fn temp_path(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!(
        "netcrab-wait-{}-{nanos}-{name}",
        std::process::id()
    ))
}

fn dead_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn waits_for_a_port_that_opens_later() {
    let addr = dead_addr();
    let mut wait = Proc::start(&["-v", "wait", &addr, "--timeout", "20s"]);
    // Only once wait has tried (and failed) does the server start.
    wait.stderr.wait_for("attempt 1: connect to");
    let _server = Server::start_exact(&["serve", &addr]);
    assert_eq!(code(wait.wait()), 0, "{}", wait.stderr.text());
    wait.stderr.wait_for(&format!("{addr} is ready"));
}

#[test]
fn quiet_on_success_and_runs_nothing_without_a_command() {
    let server = Server::start(&[]);
    let out = run(&["wait", &server.addr_str()]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(out.stdout.is_empty());
}

#[test]
fn timeout_exits_124_names_the_target_and_skips_the_command() {
    let live = Server::start(&[]);
    let dead = dead_addr();
    let marker = temp_path("marker");
    let touch = format!("touch {}", marker.display());
    let out = run(&[
        "wait",
        &live.addr_str(),
        &dead,
        "--timeout",
        "2s",
        "--",
        "sh",
        "-c",
        &touch,
    ]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 124, "{err}");
    assert!(!marker.exists(), "the command ran");
    assert!(err.contains(&format!("{dead} still down")), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(
        !err.contains(&format!("{} still down", live.addr_str())),
        "{err}"
    );
    assert!(err.contains("1 of 2 target(s) not ready"), "{err}");
}

#[test]
fn wait_for_its_short_timeout_flag_counts_bare_seconds() {
    // `wait-for-it.sh HOST:PORT -t 1 -- CMD`, as scripts already spell it.
    let dead = dead_addr();
    let out = run(&["wait", &dead, "-t", "1", "--", "true"]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 124, "{err}");
    assert!(err.contains("timed out after 1.0s"), "{err}");
}

#[test]
fn run_anyway_runs_the_command_after_the_timeout() {
    let marker = temp_path("anyway");
    let touch = format!("touch {}", marker.display());
    let out = run(&[
        "wait",
        &dead_addr(),
        "--timeout",
        "500ms",
        "--run-anyway",
        "--",
        "sh",
        "-c",
        &touch,
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(marker.exists(), "the command did not run");
    let _ = std::fs::remove_file(&marker);
    assert!(
        stderr(&out).contains("running the command anyway"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_command_exit_code_is_passed_through() {
    let server = Server::start(&[]);
    let out = run(&["wait", &server.addr_str(), "--", "sh", "-c", "exit 7"]);
    assert_eq!(code(out.status), 7, "{}", stderr(&out));
}

#[test]
fn commands_that_cannot_run_exit_127_or_126() {
    let server = Server::start(&[]);
    let out = run(&[
        "wait",
        &server.addr_str(),
        "--",
        "/nonexistent/netcrab-no-such-cmd",
    ]);
    assert_exit(&out, 127, "command not found");

    let file = temp_path("not-executable");
    std::fs::write(&file, "#!/bin/sh\n").expect("write");
    let out = run(&[
        "wait",
        &server.addr_str(),
        "--",
        file.to_str().expect("utf-8"),
    ]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(code(out.status), 126, "{}", stderr(&out));
}

#[test]
fn any_target_is_enough_with_any() {
    let live = Server::start(&[]);
    let dead = dead_addr();
    let out = run(&["wait", "--any", &dead, &live.addr_str(), "--timeout", "20s"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let out = run(&["wait", "--any", &dead, &dead_addr(), "--timeout", "500ms"]);
    assert_eq!(code(out.status), 124, "{}", stderr(&out));
}

#[test]
fn invert_waits_until_the_port_closes() {
    let server = Server::start(&[]);
    let addr = server.addr_str();
    let mut wait = Proc::start(&["-v", "wait", "--invert", &addr, "--timeout", "20s"]);
    wait.stderr.wait_for("attempt 1: accepting connections");
    drop(server);
    assert_eq!(code(wait.wait()), 0, "{}", wait.stderr.text());
    wait.stderr.wait_for(&format!("{addr} is closed"));
}

#[test]
fn invert_times_out_while_the_port_stays_open() {
    let server = Server::start(&[]);
    let out = run(&["wait", "--invert", &server.addr_str(), "--timeout", "500ms"]);
    assert_exit(&out, 124, "still up");
}

#[test]
fn expect_waits_for_the_reply_text() {
    let server = Server::start(&["--reply", "+PONG"]);
    let addr = server.addr_str();
    let out = run(&["wait", &addr, "--send", "PING", "--expect", "PONG"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));

    let out = run(&[
        "wait",
        &addr,
        "--send",
        "PING",
        "--expect",
        "READY",
        "--timeout",
        "2s",
        "--attempt-timeout",
        "300ms",
    ]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 124, "{err}");
    assert!(err.contains("no \"READY\" within 300ms"), "{err}");
    assert!(err.contains("(got \"+PONG\")"), "{err}");
}

#[test]
fn udp_targets_need_an_expected_reply() {
    let out = run(&["wait", "udp://127.0.0.1:9"]);
    assert_exit(&out, 2, "--expect");
}

#[test]
fn tls_targets_need_a_verified_handshake() {
    let server = Server::start_exact(&["serve", "--tls", "127.0.0.1:0"]);
    let line = server.proc.stderr.wait_for("fingerprint: ");
    let fp = line
        .rsplit("fingerprint: ")
        .next()
        .expect("fp")
        .trim()
        .to_owned();
    let target = format!("tls://{}", server.addr_str());
    let out = run(&["wait", &target, "--pin-sha256", &fp]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    // Not trusted: the port is open, but the target is not ready.
    let out = run(&["wait", &target, "--timeout", "1s"]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 124, "{err}");
    assert!(
        err.contains("still down") && err.contains("certificate"),
        "{err}"
    );
}

#[test]
fn udp_targets_need_send_as_well() {
    let out = run(&["wait", "udp://127.0.0.1:9", "--expect", "pong"]);
    assert_exit(&out, 2, "--send and --expect");
}

/// A UDP port nothing listens on (bound, then released).
fn dead_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind udp")
        .port()
}

#[test]
fn waits_for_a_udp_service_that_answers_later() {
    let addr = format!("127.0.0.1:{}", dead_udp_port());
    let target = format!("udp://{addr}");
    let mut wait = Proc::start(&[
        "-v",
        "wait",
        &target,
        "--send",
        "ping",
        "--expect",
        "pong",
        "--timeout",
        "20s",
        "--attempt-timeout",
        "1s",
    ]);
    // Nothing listens yet: the ICMP port-unreachable fails the attempt.
    wait.stderr.wait_for("attempt 1: ");
    wait.stderr.wait_for("connection refused");
    let _server = Listening::start(&["serve", "-u", &addr, "--reply", "pong"]);
    assert_eq!(code(wait.wait()), 0, "{}", wait.stderr.text());
    wait.stderr.wait_for(&format!("{target} is ready"));
}

#[test]
fn a_udp_service_with_the_wrong_reply_is_not_ready() {
    let server = Listening::start(&["serve", "-u", "127.0.0.1:0", "--reply", "nope"]);
    let out = run(&[
        "wait",
        &server.addr,
        "--send",
        "ping",
        "--expect",
        "pong",
        "--timeout",
        "1s",
        "--attempt-timeout",
        "300ms",
    ]);
    assert_exit(&out, 124, "no \"pong\" within 300ms (got \"nope\")");
}
