//! bench's pictures: the HTML report rendered for real in headless Chromium
//! (a screenshot and the DOM, whose figures must match `--json` of the same
//! run), the SVG plot of a comparison and of a merge, and the live view
//! under a pseudo-terminal (`script` from bsdutils) but never on a pipe.
//!
//! Chromium and `script` come from scripts/install-test-deps.sh; a test
//! that cannot start one says so loudly on stderr and passes, but CI
//! installs both, so there they run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Server, code, netcrab, run, stderr, temp_dir};

/// The longest Chromium may take to load, render and dump the page.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `cmd` with output captured, killing it after `timeout`; `None`
/// when it did not finish in time.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> Option<Output> {
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    // Drain both pipes while waiting, so a chatty child cannot block.
    let mut out = child.stdout.take()?;
    let mut err = child.stderr.take()?;
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    Some(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// The Chromium binary, if one is installed and starts.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        let Ok(out) = Command::new(name).arg("--version").output() else {
            continue;
        };
        if out.status.success() {
            return Some(PathBuf::from(name));
        }
    }
    None
}

/// Headless Chromium on `page` with `extra` flags (`--dump-dom`,
/// `--screenshot=...`), a fresh profile in `profile`.
fn chromium_on(browser: &Path, profile: &Path, page: &Path, extra: &[String]) -> Output {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(format!("file://{}", page.display()));
    let out = run_bounded(&mut cmd, CHROMIUM_TIMEOUT)
        .unwrap_or_else(|| panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?} (killed)"));
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The value at a dotted path (`latency.p99_us`) of a JSON report.
fn at<'a>(json: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(json, |v, key| &v[key])
}

/// Every `data-key="K" data-value="V">TEXT<` of a page: (K, V, TEXT).
fn figures(html: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("data-key=\"") {
        rest = &rest[i + 10..];
        let key_end = rest.find('"').expect("key");
        let key = rest[..key_end].to_owned();
        let value_at = rest.find("data-value=\"").expect("a value for each key") + 12;
        let value_end = value_at + rest[value_at..].find('"').expect("value");
        let value = rest[value_at..value_end].to_owned();
        let text_at = value_end + rest[value_end..].find('>').expect("tag end") + 1;
        let text_end = text_at + rest[text_at..].find('<').expect("text end");
        found.push((key, value, rest[text_at..text_end].to_owned()));
        rest = &rest[text_end..];
    }
    found
}

#[test]
fn the_html_report_renders_in_chromium_and_shows_the_json_figures() {
    let server = Server::start(&["--echo"]);
    let dir = temp_dir();
    let page = dir.path().join("run.html");
    let plot = dir.path().join("run.svg");
    // Open loop, so the page has corrected and uncorrected latencies.
    let out = run(&[
        "bench",
        &server.addr_str(),
        "-c",
        "2",
        "--rate",
        "400",
        "-d",
        "2s",
        "--json",
        "--report",
        page.to_str().expect("utf8"),
        "--plot",
        plot.to_str().expect("utf8"),
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let intervals = json["intervals"].as_array().expect("intervals");
    // Two seconds (one, should the first tick come more than 0.9 s late).
    assert!(
        (1..=2).contains(&intervals.len()),
        "two seconds: {intervals:?}"
    );
    let ok: u64 = intervals
        .iter()
        .map(|i| i["ok"].as_u64().expect("ok"))
        .sum();
    assert_eq!(
        Some(ok),
        json["requests"]["ok"].as_u64(),
        "intervals add up"
    );
    assert!(json["latency_uncorrected"]["count"].as_u64() > Some(0));

    // The file itself: self-contained, no script.
    let html = std::fs::read_to_string(&page).expect("report");
    assert!(!html.contains("<script"), "the page uses no script");
    for fetch in ["src=", "href=", "url(", "@import"] {
        assert!(
            !html.contains(fetch),
            "{fetch}: the page must not fetch anything"
        );
    }
    let svg = std::fs::read_to_string(&plot).expect("plot");
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<path class=\"series\"").count(), 2, "{svg}");
    assert!(svg.contains("(uncorrected, from send)"), "{svg}");

    let Some(browser) = chromium() else {
        eprintln!(
            "\n*** SKIPPED: chromium cannot start on this machine; \
             run scripts/install-test-deps.sh to render the report for real ***\n"
        );
        return;
    };
    let profile = dir.path().join("profile");
    let shot = dir.path().join("shot.png");
    let rendered = chromium_on(
        &browser,
        &profile,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1000,2600".to_owned(),
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a png");
    // A blank page of this size compresses to a few KiB; charts do not.
    assert!(
        png.len() > 30_000,
        "screenshot too small: {} bytes",
        png.len()
    );
    let dumped = chromium_on(&browser, &profile, &page, &["--dump-dom".to_owned()]);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&rendered.stderr),
        String::from_utf8_lossy(&dumped.stderr)
    );
    assert!(!logs.contains("Uncaught"), "script errors: {logs}");
    let dom = String::from_utf8_lossy(&dumped.stdout).into_owned();

    // The charts, as the browser parsed them: three SVGs (nothing failed:
    // a sentence instead of the errors chart), each series a path with a
    // non-empty outline.
    assert_eq!(dom.matches("<svg ").count(), 3, "{dom}");
    assert!(dom.contains("No request failed."));
    let paths = dom.matches("<path class=\"series\"").count();
    // Percentiles: corrected + uncorrected; rate: 1; latency: p50 p90 p99 max.
    assert_eq!(paths, 2 + 1 + 4, "{dom}");
    assert!(!dom.contains("d=\"\""), "an empty path: {dom}");
    for label in [
        ">0%<",
        ">90%<",
        ">99%<",
        ">percentile<",
        ">time<",
        ">requests/s<",
        "Latency by percentile",
        "Requests per second",
        "Latency percentiles per second",
    ] {
        assert!(
            dom.contains(label),
            "{label} missing from the rendered page"
        );
    }
    assert!(dom.contains(">latency (µs)<") || dom.contains(">latency (ms)<"));

    // Every figure on the page is the JSON report's, shown as the table
    // shows it.
    let figures = figures(&dom);
    assert!(figures.len() >= 12, "{figures:?}");
    for (key, value, text) in &figures {
        let expected = at(&json, key);
        let expected = expected
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {expected}"));
        let shown: f64 = value.parse().expect("a number");
        // serde_json's default float parsing may land one ulp away from
        // the exact value that std's parser gives for the same text.
        assert!(
            (shown - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{key}: page {shown}, json {expected}"
        );
        if key.contains("_us") {
            assert_eq!(text, &netcrab::bench::report::fmt_us(expected), "{key}");
        }
    }
    assert!(figures.iter().any(|f| f.0 == "latency_uncorrected.p99_us"));
    let ok = json["requests"]["ok"].as_u64().expect("ok");
    assert!(
        dom.contains(&format!("requests   {ok} ok, 0 errors")),
        "the terminal's table"
    );
    assert!(
        dom.contains(&format!("<td>{}</td>", server.addr_str())),
        "the workload"
    );
}

#[test]
fn merge_and_compare_draw_one_line_per_run() {
    let server = Server::start(&["--echo"]);
    let addr = server.addr_str();
    let dir = temp_dir();
    let path = |name: &str| dir.path().join(name).to_str().expect("utf8").to_owned();
    for (name, n) in [("east", "150"), ("west", "90")] {
        let out = run(&[
            "bench",
            &addr,
            "-n",
            n,
            "-c",
            "2",
            "--histogram-out",
            &path(&format!("{name}.hlog")),
        ]);
        assert_eq!(code(out.status), 0, "{}", stderr(&out));
    }
    let out = run(&[
        "bench",
        "merge",
        &path("east.hlog"),
        &path("west.hlog"),
        "--report",
        &path("merged.html"),
        "--plot",
        &path("merged.svg"),
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("merged from 2 runs"));
    let svg = std::fs::read_to_string(path("merged.svg")).expect("plot");
    for label in ["east", "west", "merged"] {
        assert!(
            svg.contains(&format!("data-label=\"{label}\"")),
            "{label}: {svg}"
        );
    }
    let html = std::fs::read_to_string(path("merged.html")).expect("report");
    assert!(
        html.contains("data-key=\"requests.ok\" data-value=\"240\""),
        "{html}"
    );
    assert!(html.contains("<summary>east</summary>"));

    // A new run drawn against a saved one.
    let out = run(&[
        "bench",
        &addr,
        "-n",
        "50",
        "-c",
        "1",
        "--histogram-out",
        &path("after.hlog"),
        "--compare",
        &path("east.hlog"),
        "--plot",
        &path("cmp.svg"),
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let svg = std::fs::read_to_string(path("cmp.svg")).expect("plot");
    assert_eq!(svg.matches("<path class=\"series\"").count(), 2, "{svg}");
    assert!(svg.contains("data-label=\"after\"") && svg.contains("data-label=\"east\""));

    // --compare alone has nowhere to draw; a bad file fails before running.
    let out = run(&["bench", &addr, "-n", "5", "--compare", &path("east.hlog")]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
    let out = run(&[
        "bench",
        &addr,
        "-n",
        "5",
        "--plot",
        &path("x.svg"),
        "--compare",
        "Cargo.toml",
    ]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
    assert!(!dir.path().join("x.svg").exists());
}

#[test]
fn the_live_view_shows_on_a_terminal_and_never_on_a_pipe() {
    let bin = env!("CARGO_BIN_EXE_netcrab");
    let have_script = Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if have_script {
        // script(1) gives the command a pseudo-terminal and copies what it
        // writes there to its own stdout.
        let command = format!("'{bin}' bench -c 2 -d 3s --rate 300");
        let out = run_bounded(
            Command::new("script").args(["-qfec", &command, "/dev/null"]),
            Duration::from_secs(60),
        )
        .expect("bench under script finished in time");
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{screen}");
        // One frame with a full second behind it.
        let frame = screen
            .split("\r\x1b[2K")
            .find(|f| f.contains("req/s"))
            .unwrap_or_else(|| panic!("no live frame in: {screen:?}"));
        assert!(frame.contains("/3.0s"), "{frame:?}");
        assert!(
            frame.contains("p50 ") && frame.contains("p99 "),
            "{frame:?}"
        );
        assert!(frame.contains(" errors"), "{frame:?}");
        assert!(
            frame.chars().any(|c| ('▁'..='█').contains(&c)),
            "a sparkline: {frame:?}"
        );
        // The final table follows, the live line erased.
        assert!(screen.contains("latency    p50"), "{screen:?}");
    } else {
        eprintln!(
            "\n*** SKIPPED (pty half): script(1) cannot start here; \
             run scripts/install-test-deps.sh ***\n"
        );
    }

    // On a pipe: no frame, no control sequence.
    let out = netcrab()
        .args(["bench", "-c", "2", "-d", "1500ms"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("req/s") && !err.contains('\x1b') && !err.contains('\r'),
        "{err:?}"
    );
}

#[test]
fn errors_by_kind_are_drawn_second_by_second() {
    // An echo server that closes every connection after its third reply,
    // with the fourth request in flight: `closed by peer`, over and over.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 16];
                for _ in 0..3 {
                    if conn.read_exact(&mut buf).is_err() || conn.write_all(&buf).is_err() {
                        return;
                    }
                }
                let _ = conn.read_exact(&mut buf);
            });
        }
    });
    let dir = temp_dir();
    let page = dir.path().join("errors.html");
    let out = run(&[
        "bench",
        &addr,
        "-c",
        "2",
        "--size",
        "16",
        "-d",
        "1500ms",
        "--json",
        "--report",
        page.to_str().expect("utf8"),
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let closed = json["errors"]["closed by peer"].as_u64().expect("count");
    assert!(closed > 0, "{json}");
    let per_second: u64 = json["intervals"]
        .as_array()
        .expect("intervals")
        .iter()
        .map(|i| i["errors"]["closed by peer"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(per_second, closed, "the intervals add up");
    let html = std::fs::read_to_string(&page).expect("report");
    assert!(html.contains("Errors per second by kind"), "{html}");
    assert!(html.contains("data-label=\"closed by peer\""), "{html}");
    assert!(!html.contains("No request failed."));
    assert!(html.contains(&format!(
        "data-key=\"requests.errors\" data-value=\"{closed}\""
    )));
}
