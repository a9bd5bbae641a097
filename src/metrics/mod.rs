//! Prometheus metrics (`--metrics ADDR` on serve, relay and proxy): the
//! counters ([`Metrics`], kept with the `prometheus-client` crate), the
//! [`Observer`] that feeds them from the accept loop and the services
//! ([`MetricsObserver`]), and the small HTTP endpoint that serves them
//! ([`http`]).
//!
//! Every counter is an atomic, and every labelled series is created when
//! the registry is (so it reads 0 until something happens, and counting
//! never takes a lock): what a connection pays for metrics is a few atomic
//! additions. Without `--metrics` the accept loop runs with
//! [`NoObserver`](crate::service::NoObserver) and pays nothing.
//!
//! [`METRICS`] lists every metric with its help text; README.md's table
//! and `--help` say the same.

pub mod http;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::ErrorKind;
use crate::service::{CloseReason, Observer};
use crate::transport::PeerAddr;

/// The upper bounds of the upstream connect latency buckets, in seconds:
/// from a loopback connect (well under a millisecond) to a connect timeout.
pub const CONNECT_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric: its name as exposed (counters with their `_total`), type,
/// labels and help text.
pub const METRICS: [(&str, &str, &str, &str); 14] = [
    (
        "netcrab_connections_accepted_total",
        "counter",
        "",
        "Connections accepted from the listener (those the access rules then refused included)",
    ),
    (
        "netcrab_connections_active",
        "gauge",
        "",
        "Connections open now (handshakes included)",
    ),
    (
        "netcrab_connections_closed_total",
        "counter",
        "reason",
        "Connections closed, by reason: clean, reset, idle_timeout, rejected, upstream_unavailable, error, shutdown, drain_timeout, evicted",
    ),
    (
        "netcrab_connections_denied_total",
        "counter",
        "",
        "Connections refused by the access rules (allow and deny lists)",
    ),
    (
        "netcrab_bytes_received_total",
        "counter",
        "",
        "Bytes received from clients (relay and proxy: counted when the connection ends)",
    ),
    (
        "netcrab_bytes_sent_total",
        "counter",
        "",
        "Bytes sent to clients (relay and proxy: counted when the connection ends)",
    ),
    (
        "netcrab_accept_errors_total",
        "counter",
        "kind",
        "accept(2) errors, by errno: emfile, enfile, enobufs, enomem, econnaborted, other",
    ),
    (
        "netcrab_handshake_failures_total",
        "counter",
        "reason",
        "Failed TLS handshakes (and WebSocket upgrades, PROXY protocol headers), by reason: timeout, closed, not_tls, incompatible, no_alpn, bad_certificate, no_certificate, alert, tls, protocol, proxy_header, io",
    ),
    (
        "netcrab_upstream_connect_attempts_total",
        "counter",
        "",
        "Attempts to connect upstream (relay, proxy), retries included",
    ),
    (
        "netcrab_upstream_connect_failures_total",
        "counter",
        "kind",
        "Failed upstream connect attempts, by kind: refused, timeout, unreachable, resolve, reset, tls, proxy, local, other",
    ),
    (
        "netcrab_upstream_connect_duration_seconds",
        "histogram",
        "",
        "Time taken by successful upstream connects (name resolution and handshakes included)",
    ),
    (
        "netcrab_exec_children_started_total",
        "counter",
        "",
        "Child processes started for connections (exec)",
    ),
    (
        "netcrab_exec_children_running",
        "gauge",
        "",
        "Child processes running now (exec)",
    ),
    (
        "netcrab_info",
        "gauge",
        "command, version",
        "The netcrab command serving these metrics, and its version (always 1)",
    ),
];

/// The help text of a metric in [`METRICS`] (the registry's and the docs'
/// one source).
fn help(name: &str) -> &'static str {
    METRICS
        .iter()
        .find(|m| m.0 == name || m.0 == format!("{name}_total"))
        .map_or("", |m| m.3)
}

/// `accept(2)` error kinds (label values of `netcrab_accept_errors_total`).
const ACCEPT_KINDS: [&str; 6] = [
    "emfile",
    "enfile",
    "enobufs",
    "enomem",
    "econnaborted",
    "other",
];

/// Handshake failure reasons (label values of
/// `netcrab_handshake_failures_total`; see
/// [`handshake_failure`](crate::tls::handshake_failure)).
const HANDSHAKE_REASONS: [&str; 12] = [
    "timeout",
    "closed",
    "not_tls",
    "incompatible",
    "no_alpn",
    "bad_certificate",
    "no_certificate",
    "alert",
    "tls",
    "protocol",
    "proxy_header",
    "io",
];

/// Upstream connect failure kinds (label values of
/// `netcrab_upstream_connect_failures_total`).
const CONNECT_KINDS: [&str; 9] = [
    "refused",
    "timeout",
    "unreachable",
    "resolve",
    "reset",
    "tls",
    "proxy",
    "local",
    "other",
];

/// One label, as the labelled families use it.
type Label = [(&'static str, &'static str); 1];

/// netcrab's metrics: a registry and the handles the observer counts with.
/// Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    accepted: Counter,
    active: Gauge,
    /// Indexed like [`CloseReason::ALL`].
    closed: Vec<Counter>,
    denied: Counter,
    received: Counter,
    sent: Counter,
    /// Indexed like [`ACCEPT_KINDS`].
    accept_errors: Vec<Counter>,
    /// Indexed like [`HANDSHAKE_REASONS`].
    handshake_failures: Vec<Counter>,
    connect_attempts: Counter,
    /// Indexed like [`CONNECT_KINDS`].
    connect_failures: Vec<Counter>,
    connect_seconds: Histogram,
    children_started: Counter,
    children_running: Gauge,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A family with one series per label value, all created now; returns
/// the family (to register) and each series' counter, in order.
fn labelled(
    label: &'static str,
    values: &[&'static str],
) -> (Family<Label, Counter>, Vec<Counter>) {
    let family = Family::<Label, Counter>::default();
    let counters = values
        .iter()
        .map(|v| family.get_or_create_owned(&[(label, *v)]))
        .collect();
    (family, counters)
}

impl Metrics {
    /// The metrics of a `command` (`serve`, `relay`, `proxy`: the value of
    /// `netcrab_info`'s `command` label), every series at zero.
    pub fn new(command: &'static str) -> Metrics {
        let mut registry = Registry::default();
        let mut counter = |name: &str| {
            let c = Counter::default();
            registry.register(name, help(name), c.clone());
            c
        };
        let accepted = counter("netcrab_connections_accepted");
        let denied = counter("netcrab_connections_denied");
        let received = counter("netcrab_bytes_received");
        let sent = counter("netcrab_bytes_sent");
        let connect_attempts = counter("netcrab_upstream_connect_attempts");
        let children_started = counter("netcrab_exec_children_started");
        let mut family = |name: &str, label, values: &[&'static str]| {
            let (family, counters) = labelled(label, values);
            registry.register(name, help(name), family);
            counters
        };
        let reasons: Vec<&'static str> = CloseReason::ALL.iter().map(|r| r.as_str()).collect();
        let closed = family("netcrab_connections_closed", "reason", &reasons);
        let accept_errors = family("netcrab_accept_errors", "kind", &ACCEPT_KINDS);
        let handshake_failures = family("netcrab_handshake_failures", "reason", &HANDSHAKE_REASONS);
        let connect_failures = family("netcrab_upstream_connect_failures", "kind", &CONNECT_KINDS);
        let mut gauge = |name: &str| {
            let g = Gauge::default();
            registry.register(name, help(name), g.clone());
            g
        };
        let active = gauge("netcrab_connections_active");
        let children_running = gauge("netcrab_exec_children_running");
        let connect_seconds = Histogram::new(CONNECT_BUCKETS);
        let name = "netcrab_upstream_connect_duration_seconds";
        registry.register(name, help(name), connect_seconds.clone());
        let info = Family::<[(&'static str, &'static str); 2], Gauge>::default();
        info.get_or_create(&[("command", command), ("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register("netcrab_info", help("netcrab_info"), info);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                accepted,
                active,
                closed,
                denied,
                received,
                sent,
                accept_errors,
                handshake_failures,
                connect_attempts,
                connect_failures,
                connect_seconds,
                children_started,
                children_running,
            }),
        }
    }

    /// The observer that counts into these metrics, for
    /// [`server::run_observed`](crate::server::run_observed).
    pub fn observer(&self) -> MetricsObserver {
        MetricsObserver {
            metrics: self.clone(),
            open: false,
        }
    }

    /// The metrics in Prometheus' text format, version 0.0.4 (what
    /// `promtool check metrics` reads).
    pub fn encode_text(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry);
        out
    }

    /// The metrics in the OpenMetrics text format (1.0.0), `# EOF`
    /// included.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(8192);
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// The [`Observer`] that counts into [`Metrics`]: one `Arc` per connection.
///
/// A connection's own observer ([`Observer::connection`]) counts it in
/// `netcrab_connections_active` until it is dropped, with the
/// connection's task; clones of it do not.
#[derive(Debug)]
pub struct MetricsObserver {
    metrics: Metrics,
    /// Whether this is a connection's observer, counted as active.
    open: bool,
}

impl Clone for MetricsObserver {
    fn clone(&self) -> MetricsObserver {
        MetricsObserver {
            metrics: self.metrics.clone(),
            open: false,
        }
    }
}

impl Drop for MetricsObserver {
    fn drop(&mut self) {
        if self.open {
            self.metrics.inner.active.dec();
        }
    }
}

impl MetricsObserver {
    fn inner(&self) -> &Inner {
        &self.metrics.inner
    }
}

impl Observer for MetricsObserver {
    #[inline]
    fn received(&self, n: usize) {
        self.inner().received.inc_by(n as u64);
    }

    #[inline]
    fn sent(&self, n: usize) {
        self.inner().sent.inc_by(n as u64);
    }

    fn closed(&self, peer: &PeerAddr, received: u64, sent: u64) {
        // The bytes were counted as they moved (or just before this).
        let _ = (peer, received, sent);
    }

    fn ended(&self, reason: CloseReason) {
        if let Some(i) = CloseReason::ALL.iter().position(|r| *r == reason) {
            self.inner().closed[i].inc();
        }
    }

    fn accepted(&self) {
        self.inner().accepted.inc();
    }

    fn connection(&self) -> MetricsObserver {
        self.inner().active.inc();
        MetricsObserver {
            metrics: self.metrics.clone(),
            open: true,
        }
    }

    fn denied(&self) {
        self.inner().denied.inc();
    }

    fn accept_error(&self, err: &io::Error) {
        self.inner().accept_errors[index(&ACCEPT_KINDS, accept_error_kind(err))].inc();
    }

    fn handshake_failed(&self, reason: &'static str) {
        self.inner().handshake_failures[index(&HANDSHAKE_REASONS, reason)].inc();
    }

    fn upstream_connect(&self, result: std::result::Result<(), ErrorKind>, elapsed: Duration) {
        let inner = self.inner();
        inner.connect_attempts.inc();
        match result {
            Ok(()) => inner.connect_seconds.observe(elapsed.as_secs_f64()),
            Err(kind) => {
                inner.connect_failures[index(&CONNECT_KINDS, connect_failure_kind(kind))].inc();
            }
        }
    }

    fn child_started(&self) {
        self.inner().children_started.inc();
        self.inner().children_running.inc();
    }

    fn child_exited(&self) {
        self.inner().children_running.dec();
    }
}

/// The position of `value` in `values`, or of the last (the catch-all).
fn index(values: &[&str], value: &str) -> usize {
    values
        .iter()
        .position(|v| *v == value)
        .unwrap_or(values.len() - 1)
}

/// The `kind` label of an `accept(2)` error.
fn accept_error_kind(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EMFILE) => "emfile",
        Some(libc::ENFILE) => "enfile",
        Some(libc::ENOBUFS) => "enobufs",
        Some(libc::ENOMEM) => "enomem",
        Some(libc::ECONNABORTED) => "econnaborted",
        _ => "other",
    }
}

/// The `kind` label of a failed upstream connect.
fn connect_failure_kind(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Refused => "refused",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Unreachable => "unreachable",
        ErrorKind::Resolve | ErrorKind::ResolveTemporary => "resolve",
        ErrorKind::Reset => "reset",
        ErrorKind::Tls => "tls",
        ErrorKind::ProxyRefused | ErrorKind::ProxyDenied => "proxy",
        ErrorKind::Local => "local",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line starting with `series ` (a name and its
    /// labels, as exposed).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn every_series_is_exposed_at_zero() {
        let text = Metrics::new("serve").encode_text();
        for (name, kind, _, help) in METRICS {
            assert!(
                text.contains(&format!("# HELP {name} {help}")),
                "{name}: {text}"
            );
            assert!(text.contains(&format!("# TYPE {name} {kind}")), "{name}");
        }
        assert_eq!(
            value(&text, "netcrab_connections_accepted_total"),
            Some(0.0)
        );
        for reason in CloseReason::ALL {
            let series = format!(
                "netcrab_connections_closed_total{{reason=\"{}\"}}",
                reason.as_str()
            );
            assert_eq!(value(&text, &series), Some(0.0), "{series}");
        }
        assert!(text.contains("netcrab_info{command=\"serve\",version=\""));
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn the_observer_counts() {
        let metrics = Metrics::new("relay");
        let o = metrics.observer();
        o.accepted();
        o.accepted();
        let first = o.connection();
        let second = o.connection();
        let copy = second.clone();
        drop(copy);
        o.received(10);
        o.sent(7);
        o.sent(1);
        o.ended(CloseReason::Clean);
        drop(first);
        o.denied();
        o.accept_error(&io::Error::from_raw_os_error(libc::EMFILE));
        o.accept_error(&io::Error::from_raw_os_error(libc::EINVAL));
        o.handshake_failed("no_certificate");
        o.handshake_failed("something new");
        o.upstream_connect(Ok(()), Duration::from_millis(3));
        o.upstream_connect(Err(ErrorKind::Refused), Duration::from_millis(1));
        o.child_started();
        o.closed(
            &PeerAddr::Unix {
                name: None,
                pid: None,
            },
            10,
            8,
        );
        let text = metrics.encode_text();
        let v = |series: &str| value(&text, series);
        assert_eq!(v("netcrab_connections_accepted_total"), Some(2.0));
        assert_eq!(v("netcrab_connections_active"), Some(1.0));
        assert_eq!(
            v("netcrab_connections_closed_total{reason=\"clean\"}"),
            Some(1.0)
        );
        assert_eq!(v("netcrab_connections_denied_total"), Some(1.0));
        assert_eq!(v("netcrab_bytes_received_total"), Some(10.0));
        assert_eq!(v("netcrab_bytes_sent_total"), Some(8.0));
        assert_eq!(v("netcrab_accept_errors_total{kind=\"emfile\"}"), Some(1.0));
        assert_eq!(v("netcrab_accept_errors_total{kind=\"other\"}"), Some(1.0));
        assert_eq!(
            v("netcrab_handshake_failures_total{reason=\"no_certificate\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("netcrab_handshake_failures_total{reason=\"io\"}"),
            Some(1.0)
        );
        assert_eq!(v("netcrab_upstream_connect_attempts_total"), Some(2.0));
        assert_eq!(
            v("netcrab_upstream_connect_failures_total{kind=\"refused\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("netcrab_upstream_connect_duration_seconds_count"),
            Some(1.0)
        );
        assert_eq!(
            v("netcrab_upstream_connect_duration_seconds_bucket{le=\"0.0025\"}"),
            Some(0.0)
        );
        assert_eq!(
            v("netcrab_upstream_connect_duration_seconds_bucket{le=\"0.005\"}"),
            Some(1.0)
        );
        assert_eq!(v("netcrab_exec_children_started_total"), Some(1.0));
        assert_eq!(v("netcrab_exec_children_running"), Some(1.0));
        o.child_exited();
        drop(second);
        let text = metrics.encode_text();
        assert_eq!(value(&text, "netcrab_exec_children_running"), Some(0.0));
        assert_eq!(value(&text, "netcrab_connections_active"), Some(0.0));
    }

    #[test]
    fn openmetrics_ends_with_eof() {
        let text = Metrics::new("proxy").encode_openmetrics();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE netcrab_connections_accepted counter"));
    }
}
