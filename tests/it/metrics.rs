//! `--metrics ADDR`: serve, relay and proxy count known traffic into
//! `/metrics`; what a plain `curl` gets passes `promtool check metrics`;
//! a real Prometheus (Debian's `prometheus` package, installed by
//! scripts/install-test-deps.sh) scrapes the counters on loopback and its
//! HTTP API reports the same numbers.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proxy_client::{Daemon, which};
use crate::util::*;

/// The `http://ADDR/metrics` URL a netcrab process logged.
fn metrics_url(proc: &Proc) -> String {
    let line = proc.stderr.wait_for("metrics on http://");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no url in {line:?}"));
    assert!(url.ends_with("/metrics"), "{url}");
    url.to_owned()
}

/// `curl -s ARGS...`: the output, asserting curl succeeded.
fn curl(args: &[&str]) -> String {
    assert!(
        which("curl"),
        "curl is not installed: run scripts/install-test-deps.sh"
    );
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Scrapes `url` until `series` reads `expected` (the server counts a
/// connection's end in its own task, just after the client sees it);
/// returns that scrape.
fn scrape_until(url: &str, series: &str, expected: f64) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = curl(&[url]);
        if value(&text, series) == Some(expected) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never read {expected}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `promtool check metrics` on `text`: passes, with nothing to say.
fn promtool_passes(text: &str) {
    assert!(
        which("promtool"),
        "promtool is not installed (Debian's prometheus package): run scripts/install-test-deps.sh"
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("wait for promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}\non:\n{text}",
        out.status
    );
}

/// Sends `len` bytes to an echo server at `addr` and reads them back, then
/// closes.
fn echo_once(addr: SocketAddr, len: usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let data = payload(len, len as u64);
    s.write_all(&data).expect("send");
    let mut back = vec![0u8; len];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, data);
}

#[test]
fn serve_counts_known_traffic_and_promtool_accepts_what_curl_gets() {
    let server = Server::start(&["--echo", "--metrics", "127.0.0.1:0"]);
    let url = metrics_url(&server.proc);
    for _ in 0..3 {
        echo_once(server.addr, 1000);
    }
    // One connection stays open.
    let mut open = server.connect();
    open.write_all(b"hi").expect("send");
    let mut two = [0u8; 2];
    open.read_exact(&mut two).expect("echo");

    scrape_until(
        &url,
        "netcrab_connections_closed_total{reason=\"clean\"}",
        3.0,
    );
    // A connection counts as active until its task has ended, just after.
    let text = scrape_until(&url, "netcrab_connections_active", 1.0);
    assert_eq!(
        value(&text, "netcrab_connections_accepted_total"),
        Some(4.0)
    );
    assert_eq!(value(&text, "netcrab_bytes_received_total"), Some(3002.0));
    assert_eq!(value(&text, "netcrab_bytes_sent_total"), Some(3002.0));
    assert_eq!(value(&text, "netcrab_connections_denied_total"), Some(0.0));
    assert!(text.contains("netcrab_info{command=\"serve\",version=\""));
    promtool_passes(&text);

    drop(open);
    scrape_until(&url, "netcrab_connections_active", 0.0);
}

#[test]
fn the_endpoint_negotiates_openmetrics_and_answers_only_metrics() {
    let server = Server::start(&["--metrics", "127.0.0.1:0"]);
    let url = metrics_url(&server.proc);
    let plain = curl(&["-i", &url]);
    assert!(plain.starts_with("HTTP/1.1 200 OK\r\n"), "{plain}");
    assert!(
        plain.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{plain}"
    );
    assert!(!plain.contains("# EOF"));
    let om = curl(&["-i", "-H", "Accept: application/openmetrics-text", &url]);
    assert!(
        om.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    let status = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        curl(&all)
    };
    let base = url.trim_end_matches("/metrics");
    assert_eq!(status(&[&format!("{base}/")]), "404");
    assert_eq!(status(&[&format!("{base}/metricsx")]), "404");
    assert_eq!(status(&["-X", "POST", &url]), "405");
    // A request head past the bound gets 431, and the server goes on.
    let long = format!("X-Long: {}", "a".repeat(10_000));
    assert_eq!(status(&["-H", &long, &url]), "431");
    assert_eq!(status(&[&url]), "200");
    // And the main listener was never involved.
    assert_eq!(
        value(&curl(&[&url]), "netcrab_connections_accepted_total"),
        Some(0.0)
    );
}

#[test]
fn handshake_failures_and_denied_connections_are_counted() {
    let server = Server::start(&[
        "--tls",
        "--echo",
        "--deny",
        "127.0.0.2",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let url = metrics_url(&server.proc);
    // Not TLS at all.
    let mut plain = server.connect();
    plain
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .expect("send garbage");
    let _ = plain.read_to_end(&mut Vec::new());
    // Gone before finishing the handshake.
    drop(server.connect());
    // From a denied address.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let source: SocketAddr = "127.0.0.2:0".parse().expect("addr");
    socket.bind(&source.into()).expect("bind 127.0.0.2");
    socket.connect(&server.addr.into()).expect("connect");
    drop(socket);

    // Each count lands in the server just after the client sees its
    // effect: wait for the last of each connection's.
    scrape_until(&url, "netcrab_connections_denied_total", 1.0);
    scrape_until(
        &url,
        "netcrab_connections_closed_total{reason=\"rejected\"}",
        2.0,
    );
    let text = scrape_until(&url, "netcrab_connections_active", 0.0);
    for reason in ["not_tls", "closed"] {
        let series = format!("netcrab_handshake_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&text, &series), Some(1.0), "{series}: {text}");
    }
    assert_eq!(
        value(&text, "netcrab_connections_accepted_total"),
        Some(3.0)
    );
    promtool_passes(&text);
}

#[test]
fn relay_counts_upstream_connects_failures_and_bytes() {
    let upstream = Server::start(&["--echo"]);
    let relay = Server::start_exact(&[
        "relay",
        "127.0.0.1:0",
        &upstream.addr_str(),
        "--retry",
        "0",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let url = metrics_url(&relay.proc);
    for _ in 0..2 {
        echo_once(relay.addr, 500);
    }
    scrape_until(
        &url,
        "netcrab_connections_closed_total{reason=\"clean\"}",
        2.0,
    );
    // The upstream goes away: the next client's connect is refused.
    drop(upstream);
    let mut s = relay.connect();
    let _ = s.read_to_end(&mut Vec::new());

    let text = scrape_until(
        &url,
        "netcrab_connections_closed_total{reason=\"upstream_unavailable\"}",
        1.0,
    );
    assert_eq!(
        value(&text, "netcrab_connections_accepted_total"),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "netcrab_upstream_connect_attempts_total"),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            "netcrab_upstream_connect_failures_total{kind=\"refused\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "netcrab_upstream_connect_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "netcrab_upstream_connect_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(2.0)
    );
    assert_eq!(value(&text, "netcrab_bytes_received_total"), Some(1000.0));
    assert_eq!(value(&text, "netcrab_bytes_sent_total"), Some(1000.0));
    assert!(text.contains("netcrab_info{command=\"relay\",version=\""));
    promtool_passes(&text);
}

#[test]
fn proxy_counts_tunnels_and_upstream_connects() {
    let target = Server::start(&["--echo"]);
    let proxy = Server::start_exact(&["proxy", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let url = metrics_url(&proxy.proc);
    let mut s = proxy.connect();
    let request = format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n", target.addr);
    s.write_all(request.as_bytes()).expect("send request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("read response head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    s.write_all(b"hello").expect("send");
    let mut back = [0u8; 5];
    s.read_exact(&mut back).expect("echo");
    drop(s);

    let text = scrape_until(
        &url,
        "netcrab_connections_closed_total{reason=\"clean\"}",
        1.0,
    );
    assert_eq!(
        value(&text, "netcrab_upstream_connect_attempts_total"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "netcrab_upstream_connect_duration_seconds_count"),
        Some(1.0)
    );
    assert_eq!(value(&text, "netcrab_bytes_received_total"), Some(5.0));
    assert_eq!(value(&text, "netcrab_bytes_sent_total"), Some(5.0));
    promtool_passes(&text);
}

#[test]
fn proxy_counts_clients_its_rules_refuse() {
    let proxy = Server::start_exact(&[
        "proxy",
        "127.0.0.1:0",
        "--deny",
        "127.0.0.1",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let url = metrics_url(&proxy.proc);
    let mut s = proxy.connect();
    let _ = s.read_to_end(&mut Vec::new());
    let text = scrape_until(
        &url,
        "netcrab_connections_closed_total{reason=\"rejected\"}",
        1.0,
    );
    assert_eq!(value(&text, "netcrab_connections_denied_total"), Some(1.0));
    assert_eq!(
        value(&text, "netcrab_upstream_connect_attempts_total"),
        Some(0.0)
    );
}

#[test]
fn accept_errors_are_counted_by_kind() {
    let mut cmd = netcrab();
    cmd.args(["serve", "127.0.0.1:0", "--echo", "--metrics", "127.0.0.1:0"]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    #[allow(unsafe_code)]
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let lim = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::from_proc(Proc::start_with(&mut cmd));
    let url = metrics_url(&server.proc);
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(TcpStream::connect(server.addr).expect("connect (backlog)"));
        if server.proc.stderr.count("too many open files") > 0 {
            break;
        }
    }
    server.proc.stderr.wait_for("too many open files");
    // The metrics listener needs a descriptor too: release some first.
    held.truncate(4);
    server.proc.stderr.wait_for("accept: recovered");
    let text = curl(&[&url]);
    let emfile = value(&text, "netcrab_accept_errors_total{kind=\"emfile\"}");
    assert!(emfile.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        value(&text, "netcrab_accept_errors_total{kind=\"other\"}"),
        Some(0.0)
    );
}

#[test]
fn metrics_needs_a_tcp_address() {
    let out = run(&["serve", "127.0.0.1:0", "--metrics", "unix:///tmp/m.sock"]);
    assert_exit(&out, 2, "--metrics takes a TCP address");
    let out = run(&["serve", "udp://127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    assert_exit(&out, 2, "--metrics");
}

/// The samples Prometheus holds for `query`, by series (`name` or
/// `name{label="value"}` for the one label netcrab's series have).
fn prometheus_query(api: &str, query: &str) -> HashMap<String, f64> {
    let body = curl(&[
        "-G",
        &format!("{api}/api/v1/query"),
        "--data-urlencode",
        &format!("query={query}"),
    ]);
    let json: serde_json::Value = match serde_json::from_str(&body) {
        Ok(json) => json,
        Err(_) => return HashMap::new(),
    };
    let mut samples = HashMap::new();
    for result in json["data"]["result"].as_array().into_iter().flatten() {
        let metric = &result["metric"];
        let Some(name) = metric["__name__"].as_str() else {
            continue;
        };
        let series = match (metric["reason"].as_str(), metric["kind"].as_str()) {
            (Some(r), _) => format!("{name}{{reason=\"{r}\"}}"),
            (_, Some(k)) => format!("{name}{{kind=\"{k}\"}}"),
            _ => name.to_owned(),
        };
        if let Some(v) = result["value"][1].as_str().and_then(|v| v.parse().ok()) {
            samples.insert(series, v);
        }
    }
    samples
}

#[test]
fn prometheus_scrapes_the_counters_netcrab_counted() {
    let server = Server::start(&["--echo", "--metrics", "127.0.0.1:0"]);
    let url = metrics_url(&server.proc);
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    for _ in 0..5 {
        echo_once(server.addr, 700);
    }
    scrape_until(
        &url,
        "netcrab_connections_closed_total{reason=\"clean\"}",
        5.0,
    );

    let prometheus = Daemon::start("prometheus", |port, dir| {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: netcrab\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ));
        cmd
    });
    let api = format!("http://{}", prometheus.addr());
    let expected: HashMap<String, f64> = [
        ("up", 1.0),
        ("netcrab_connections_accepted_total", 5.0),
        ("netcrab_connections_active", 0.0),
        ("netcrab_connections_closed_total{reason=\"clean\"}", 5.0),
        ("netcrab_bytes_received_total", 3500.0),
        ("netcrab_bytes_sent_total", 3500.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let query = "{job=\"netcrab\",__name__=~\"up|netcrab_connections_accepted_total|netcrab_connections_active|netcrab_connections_closed_total|netcrab_bytes_received_total|netcrab_bytes_sent_total\"}";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let samples = prometheus_query(&api, query);
        if expected.iter().all(|(k, v)| samples.get(k) == Some(v)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never reported {expected:?}; last answer: {samples:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
