//! `netcrab bench`: runs the real binary against `netcrab serve` (and a
//! stalling test server) on loopback, and checks the JSON report, the
//! histogram log and `bench merge`. Small request counts: these check that
//! the tool measures correctly, never how fast anything is.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Server, assert_exit, code, free_port, run, stderr};

/// Runs `netcrab bench ARGS --json`, expects success, returns the report.
fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(&all);
    assert_eq!(code(out.status), 0, "bench failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad json ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        )
    })
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn bench_measures_an_echo_server_and_reports_json() {
    let server = Server::start(&["--echo"]);
    let addr = server.addr_str();
    let r = bench_json(&[&addr, "-n", "200", "-c", "4", "--size", "100"]);
    assert_eq!(r["schema"], "netcrab.bench/v1");
    assert_eq!(r["target"], addr.as_str());
    assert_eq!(r["transport"], "tcp");
    assert_eq!(r["embedded_server"], false);
    assert_eq!(n(&r["requests"]["ok"]), 200);
    assert_eq!(n(&r["requests"]["errors"]), 0);
    assert_eq!(n(&r["requests"]["total"]), 200);
    assert_eq!(n(&r["latency"]["count"]), 200);
    assert_eq!(n(&r["throughput"]["bytes_sent"]), 200 * 100);
    assert_eq!(n(&r["throughput"]["bytes_received"]), 200 * 100);
    assert_eq!(n(&r["connections_opened"]), 4);
    assert_eq!(n(&r["workload"]["connections"]), 4);
    assert_eq!(n(&r["workload"]["request_bytes"]), 100);
    assert_eq!(r["workload"]["pacing"], "closed");
    assert_eq!(n(&r["errors"]["wrong reply"]), 0);
    let lat = &r["latency"];
    assert!(lat["p50_us"].as_f64() > Some(0.0));
    assert!(lat["p50_us"].as_f64() <= lat["p99_us"].as_f64());
    assert!(lat["p99_us"].as_f64() <= lat["max_us"].as_f64());
    assert!(r["generator"]["cpu_s"].is_number());
    assert!(r["server"].is_null(), "no --server-pid: server cpu unknown");
}

#[test]
fn bench_reports_the_server_cpu_given_its_pid() {
    let server = Server::start(&["--echo"]);
    let pid = server.proc.pid().to_string();
    let r = bench_json(&[
        &server.addr_str(),
        "-n",
        "300",
        "-c",
        "2",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(n(&r["requests"]["ok"]), 300);
    assert!(r["server"]["cpu_s"].is_number(), "{}", r["server"]);
}

#[test]
fn wrong_replies_are_counted_as_errors_not_crashes() {
    // `serve --reply hello` answers every read with "hello": an echo check
    // of a 5-byte request fails every time, with the framing intact.
    let server = Server::start(&["--reply", "hello"]);
    let addr = server.addr_str();
    // No request succeeds: the report is printed all the same, and the exit
    // code is the most common error's (wrong reply: a protocol error, 10).
    let out = run(&[
        "bench",
        &addr,
        "-n",
        "20",
        "-c",
        "2",
        "--payload",
        "abcde",
        "--json",
    ]);
    assert_exit(
        &out,
        10,
        "no request succeeded: 20 of 20 failed, most with wrong reply",
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(n(&r["requests"]["ok"]), 0);
    assert_eq!(n(&r["errors"]["wrong reply"]), 20);
    assert_eq!(n(&r["requests"]["total"]), 20);
    // Told what to expect, the same server passes.
    let r = bench_json(&[
        &addr,
        "-n",
        "20",
        "-c",
        "2",
        "--payload",
        "abcde",
        "--expect",
        "hello",
    ]);
    assert_eq!(n(&r["requests"]["ok"]), 20);
    assert_eq!(n(&r["requests"]["errors"]), 0);
    assert_eq!(n(&r["workload"]["reply_bytes"]), 5);
}

#[test]
fn bench_without_an_address_runs_an_embedded_echo_server() {
    let r = bench_json(&["-n", "150", "-c", "3"]);
    assert_eq!(r["embedded_server"], true);
    assert_eq!(n(&r["requests"]["ok"]), 150);
    assert!(
        r["server"]["cpu_s"].is_number(),
        "embedded: server cpu known"
    );
    // And the table for people.
    let out = run(&["bench", "-n", "50", "-c", "1"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("embedded echo server"), "{table}");
    assert!(table.contains("50 ok, 0 errors"), "{table}");
    assert!(table.contains("p99.9"), "{table}");
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    // `netcrab bench --json | head -1`: the reader is gone before the
    // report is written. The report has nowhere to go; that is no error.
    for format in [&["--json"][..], &[][..]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = crate::util::netcrab()
            .args(["bench", "-n", "20", "-c", "1"])
            .args(format)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .output()
            .expect("run netcrab");
        let err = stderr(&out);
        assert_eq!(code(out.status), 0, "{format:?}: {err}");
        assert!(!err.contains("panicked"), "{format:?}: {err}");
    }
}

#[test]
fn a_refused_target_fails_with_its_exit_code() {
    let port = free_port().to_string();
    let out = run(&["bench", &format!("127.0.0.1:{port}"), "-n", "5"]);
    assert_exit(&out, 4, "connection refused");
    let out = run(&["bench", "-c", "0"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
}

#[test]
fn histogram_logs_merge_exactly() {
    let server = Server::start(&["--echo"]);
    let addr = server.addr_str();
    let dir = std::env::temp_dir().join(format!("netcrab-bench-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let a = dir.join("a.hlog");
    let b = dir.join("b.hlog");
    let ra = bench_json(&[
        &addr,
        "-n",
        "120",
        "-c",
        "2",
        "--histogram-out",
        a.to_str().expect("utf8"),
    ]);
    let rb = bench_json(&[
        &addr,
        "-n",
        "80",
        "-c",
        "3",
        "--histogram-out",
        b.to_str().expect("utf8"),
    ]);
    let text = std::fs::read_to_string(&a).expect("histogram log");
    assert!(text.contains("Tag=latency,"), "{text}");
    assert!(text.contains("Tag=connect,"), "{text}");

    let m = bench_json(&[
        "merge",
        a.to_str().expect("utf8"),
        b.to_str().expect("utf8"),
    ]);
    assert_eq!(m["schema"], "netcrab.bench/v1");
    assert_eq!(n(&m["merged_runs"]), 2);
    assert_eq!(n(&m["requests"]["ok"]), 200);
    assert_eq!(n(&m["latency"]["count"]), 200);
    assert_eq!(n(&m["workload"]["connections"]), 5);
    // The merged extremes are the extremes of the parts.
    let max = |r: &Value| r["latency"]["max_us"].as_f64().expect("max");
    let min = |r: &Value| r["latency"]["min_us"].as_f64().expect("min");
    assert_eq!(max(&m), max(&ra).max(max(&rb)));
    assert_eq!(min(&m), min(&ra).min(min(&rb)));

    let out = run(&[
        "bench",
        "merge",
        a.to_str().expect("utf8"),
        b.to_str().expect("utf8"),
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("merged from 2 runs"));
    // Not a histogram log: a usage error, not a panic.
    let out = run(&["bench", "merge", "Cargo.toml"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An echo server that, once, stalls for `stall` before answering the
/// message that brings a connection past `after` bytes.
struct StallServer {
    addr: String,
}

impl StallServer {
    fn start(after: usize, stall: Duration) -> StallServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stalled = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let stalled = stalled.clone();
                std::thread::spawn(move || echo_with_stall(conn, after, stall, &stalled));
            }
        });
        StallServer { addr }
    }
}

fn echo_with_stall(mut conn: TcpStream, after: usize, stall: Duration, stalled: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    let mut buf = [0u8; 4096];
    let mut seen = 0;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        seen += n;
        if seen > after && !stalled.swap(true, Ordering::SeqCst) {
            std::thread::sleep(stall);
        }
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Latency samples of at least `ms` milliseconds in a histogram log.
fn slow_samples(path: &Path, ms: u64) -> u64 {
    let data = netcrab::bench::histfile::read(path).expect("histogram log");
    data.latency.count_between(ms * 1_000_000, u64::MAX)
}

#[test]
fn open_loop_percentiles_include_a_server_stall_and_closed_loop_ones_do_not() {
    // One connection, 16-byte requests; the server stalls 300 ms once,
    // around request 50. At 200 req/s open loop, the ~60 requests due
    // during the stall queue behind it, and those due in its first 100 ms
    // wait at least 200 ms: about 20 slow samples. Closed loop waits for
    // each reply before sending, so only the stalled request is slow.
    // (CPU starvation only makes the open-loop count larger.)
    let dir = std::env::temp_dir().join(format!("netcrab-bench-co-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let (open_log, closed_log) = (dir.join("open.hlog"), dir.join("closed.hlog"));
    let stall = Duration::from_millis(300);

    let server = StallServer::start(50 * 16, stall);
    let open = bench_json(&[
        &server.addr,
        "-c",
        "1",
        "--size",
        "16",
        "--rate",
        "200",
        "-n",
        "200",
        "--histogram-out",
        open_log.to_str().expect("utf8"),
    ]);
    let server = StallServer::start(50 * 16, stall);
    let closed = bench_json(&[
        &server.addr,
        "-c",
        "1",
        "--size",
        "16",
        "-n",
        "200",
        "--histogram-out",
        closed_log.to_str().expect("utf8"),
    ]);
    assert_eq!(n(&open["requests"]["ok"]), 200);
    assert_eq!(n(&closed["requests"]["ok"]), 200);

    let open_slow = slow_samples(&open_log, 200);
    let closed_slow = slow_samples(&closed_log, 200);
    eprintln!("samples >= 200ms: open loop {open_slow}, closed loop {closed_slow}");
    assert!(
        open_slow >= 10,
        "open loop: only {open_slow} samples >= 200ms"
    );
    assert!(
        (1..=3).contains(&closed_slow),
        "closed loop: {closed_slow} samples >= 200ms (expected the stalled one)"
    );
    // In the percentiles: open loop's p99 holds the stall; closed loop's
    // median does not, though its max does.
    let p = |r: &Value, k: &str| r["latency"][k].as_f64().expect("percentile");
    assert!(p(&open, "p99_us") >= 200_000.0, "{}", open["latency"]);
    assert!(p(&closed, "p50_us") < 200_000.0, "{}", closed["latency"]);
    assert!(
        p(&closed, "max_us") >= 300_000.0 * 0.99,
        "{}",
        closed["latency"]
    );
    assert!(n(&open["rate"]["late_sends"]) >= 10, "{}", open["rate"]);
    // Measured from each send instead (the uncorrected latency, open loop
    // only), the queue behind the stall disappears: a few slow samples.
    let open_data = netcrab::bench::histfile::read(&open_log).expect("histogram log");
    let uncorrected = open_data
        .uncorrected
        .expect("open loop saves the uncorrected histogram");
    assert_eq!(uncorrected.len(), 200);
    let slow = uncorrected.count_between(200_000_000, u64::MAX);
    assert!(
        slow < open_slow && slow <= 3,
        "uncorrected: {slow} samples >= 200ms"
    );
    assert!(open["latency_uncorrected"]["p99_us"].as_f64() < open["latency"]["p99_us"].as_f64());
    assert!(
        closed["latency_uncorrected"].is_null(),
        "closed loop has one latency"
    );
    let closed_data = netcrab::bench::histfile::read(&closed_log).expect("histogram log");
    assert!(closed_data.uncorrected.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pipelined_and_churned_requests_are_all_answered() {
    let server = Server::start(&["--echo"]);
    let addr = server.addr_str();
    let r = bench_json(&[
        &addr,
        "-n",
        "1000",
        "-c",
        "2",
        "--pipeline",
        "8",
        "--size",
        "300",
    ]);
    assert_eq!(n(&r["requests"]["ok"]), 1000);
    assert_eq!(n(&r["requests"]["errors"]), 0);
    assert_eq!(n(&r["workload"]["pipeline"]), 8);
    // Churn: a connection per request (give or take one per worker that
    // connected just as the budget ran out).
    let r = bench_json(&[&addr, "-n", "50", "-c", "2", "--churn"]);
    assert_eq!(n(&r["requests"]["ok"]), 50);
    let opened = n(&r["connections_opened"]);
    assert!(
        (50..=52).contains(&opened),
        "{opened} connections for 50 churned requests"
    );
    assert_eq!(n(&r["connect"]["count"]), opened);
}

#[test]
fn bench_runs_over_tls_with_a_pinned_certificate_and_over_unix() {
    // TLS: pin the fingerprint the server printed.
    let server = Server::start_exact(&["serve", "tls://127.0.0.1:0", "--echo"]);
    let line = server.proc.stderr.wait_for("fingerprint: ");
    let fp = line
        .rsplit("fingerprint: ")
        .next()
        .unwrap_or_default()
        .trim();
    let target = format!("tls://{}", server.addr_str());
    let r = bench_json(&[&target, "-n", "100", "-c", "2", "--pin-sha256", fp]);
    assert_eq!(r["transport"], "tls");
    assert_eq!(n(&r["requests"]["ok"]), 100);
    assert_eq!(n(&r["errors"]["wrong reply"]), 0);

    // Unix socket.
    let dir = crate::util::temp_dir();
    let sock = format!("unix://{}", dir.path().join("b.sock").display());
    let _unix = crate::util::Listening::start(&["serve", &sock, "--echo"]);
    let r = bench_json(&[&sock, "-n", "100", "-c", "2"]);
    assert_eq!(r["transport"], "unix");
    assert_eq!(n(&r["requests"]["ok"]), 100);
}
