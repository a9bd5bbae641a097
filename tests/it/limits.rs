//! Flag ranges and the library's robustness against huge values: every
//! value an operator can type is served or refused with exit 2, never a
//! panic (exit 101).

use std::io::Write;
use std::net::Shutdown;
use std::os::unix::process::CommandExt;

use crate::util::*;

/// Runs netcrab and asserts a usage error naming `flag` and its range.
#[track_caller]
fn out_of_range(args: &[&str], flag: &str, range: &str) {
    let out = run(args);
    assert_exit(&out, 2, &format!("{flag}: "));
    let err = stderr(&out);
    assert!(err.contains(&format!("is out of range ({range})")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn connect_wait_1e20_is_a_usage_error() {
    out_of_range(
        &["connect", "127.0.0.1:1", "--wait", "1e20"],
        "--wait",
        "0 to 30d",
    );
}

#[test]
fn connect_retry_for_1e19_is_a_usage_error() {
    out_of_range(
        &["connect", "127.0.0.1:1", "--retry-for", "1e19"],
        "--retry-for",
        "0 to 30d",
    );
}

#[test]
fn wait_timeout_1e19_is_a_usage_error() {
    out_of_range(
        &["wait", "127.0.0.1:1", "--timeout", "1e19"],
        "--timeout",
        "0 to 30d",
    );
}

#[test]
fn wait_attempt_timeout_1e19_is_a_usage_error() {
    out_of_range(
        &["wait", "127.0.0.1:1", "--attempt-timeout", "1e19"],
        "--attempt-timeout",
        "0 to 30d",
    );
}

#[test]
fn relay_retry_for_1e19_is_a_usage_error() {
    out_of_range(
        &["relay", "127.0.0.1:0", "127.0.0.1:1", "--retry-for", "1e19"],
        "--retry-for",
        "0 to 30d",
    );
}

#[test]
fn bench_size_u64_max_is_a_usage_error() {
    out_of_range(
        &["bench", "--size", "18446744073709551615"],
        "--size",
        "1 to 1GiB",
    );
}

#[test]
fn keepalive_beyond_linux_cap_is_a_usage_error_for_every_command() {
    for args in [
        &["serve", "127.0.0.1:0"][..],
        &["connect", "127.0.0.1:1"],
        &["relay", "127.0.0.1:0", "127.0.0.1:1"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--keepalive", "100000s"]);
        out_of_range(&all, "--keepalive", "1s to 32767s");
    }
}

#[test]
fn counts_have_ranges_too() {
    let out = run(&[
        "serve",
        "127.0.0.1:0",
        "--max-conns",
        "18446744073709551615",
    ]);
    assert_exit(&out, 2, "--max-conns");
    let out = run(&["bench", "-c", "0"]);
    assert_exit(&out, 2, "--connections");
}

/// The largest values accepted work: a relay with a 30-day retry budget
/// and keepalive at the kernel's cap serves (before, `--retry-for 1e19`
/// panicked inside every connection's task).
#[test]
fn the_largest_accepted_values_serve() {
    let upstream = Server::start(&["--echo"]);
    let relay = Server::start_exact(&[
        "relay",
        "127.0.0.1:0",
        &upstream.addr_str(),
        "--retry-for",
        "30d",
        "--keepalive",
        "32767s",
        "--idle-timeout",
        "30d",
    ]);
    let mut client = relay.connect();
    client.write_all(b"big values").expect("send");
    client.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut client), b"big values");
    let out = run(&[
        "connect",
        &upstream.addr_str(),
        "--send",
        "x",
        "--wait",
        "30d",
        "--retry-for",
        "30d",
        "--keepalive",
        "32767s",
    ]);
    assert_eq!(out.stdout, b"x", "{}", stderr(&out));
}

/// `netcrab ARGS...` with its open-files limit set to `soft`:`hard`
/// before it starts.
fn with_nofile_limit(args: &[&str], soft: u64, hard: u64) -> Server {
    let mut cmd = netcrab();
    cmd.args(args);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Server::from_proc(Proc::start_with(&mut cmd))
}

/// The soft and hard open-files limits of a running process.
fn nofile_limits(pid: i32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

#[test]
fn the_soft_open_files_limit_is_raised_to_the_hard_one() {
    let server = with_nofile_limit(
        &["-v", "serve", "127.0.0.1:0", "--max-conns", "100"],
        64,
        300,
    );
    assert_eq!(
        nofile_limits(server.proc.pid()),
        ("300".to_owned(), "300".to_owned())
    );
    server
        .proc
        .stderr
        .wait_for("open files limit: raised from 64 to 300");
    // 100 connections fit in 300: no warning.
    assert_eq!(server.proc.stderr.count("open files;"), 0);
}

#[test]
fn a_limit_below_what_max_conns_needs_is_warned_once_with_the_figures() {
    let server = with_nofile_limit(&["serve", "127.0.0.1:0", "--max-conns", "4096"], 64, 300);
    let line = server.proc.stderr.wait_for("open files;");
    assert!(
        line.contains("warning: --max-conns 4096 needs about 4128 open files; the limit is 300"),
        "{line}"
    );
    // A relay with splice needs about 6 per connection, 2 without.
    let relay = with_nofile_limit(
        &["relay", "127.0.0.1:0", "127.0.0.1:1", "--max-conns", "100"],
        64,
        300,
    );
    let line = relay.proc.stderr.wait_for("open files;");
    assert!(
        line.contains("--max-conns 100 needs about 632 open files; the limit is 300"),
        "{line}"
    );
    assert_eq!(relay.proc.stderr.count("open files;"), 1);
    let relay = with_nofile_limit(
        &[
            "relay",
            "127.0.0.1:0",
            "127.0.0.1:1",
            "--max-conns",
            "100",
            "--no-splice",
        ],
        64,
        300,
    );
    assert_eq!(
        relay.proc.stderr.count("open files;"),
        0,
        "{}",
        relay.proc.stderr.text()
    );
}
