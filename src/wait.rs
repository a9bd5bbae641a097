//! `netcrab wait`: wait until services are ready (or, inverted, gone).
//!
//! Every target is probed in parallel, each on its own schedule: an attempt
//! (connect, which for `tls://` includes a verified handshake; optionally
//! send a message; optionally read until the reply contains the expected
//! text) bounded by the attempt timeout, then a backoff delay from the
//! [`RetryPolicy`] (exponential with full jitter), until it succeeds or the
//! overall timeout runs out. Every kind of failure is retried (a host name
//! that does not resolve yet is normal while containers start), except a
//! usage error, which no amount of waiting fixes.
//!
//! An `http://` or `https://` URL ([`Target::Http`]) is probed with a `GET`
//! over the same connect chain (TLS for https), by the small client in
//! [`http`]: ready when the status is in [`WaitConfig::expect_status`] and
//! the body contains the expected text, if any.
//!
//! A UDP target has no connection to accept: an attempt sends the `--send`
//! datagram and is ready once a reply datagram contains the expected text.
//! No reply within the attempt timeout, or an ICMP port-unreachable (a
//! "connection refused" on the connected socket), fails the attempt, and
//! the next one sends again after the backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::endpoint::{Endpoint, HostPort, Scheme};
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::escape::{LOG_PREVIEW, escape_bytes};
use crate::retry::RetryPolicy;
use crate::settings::Setting;
use crate::transport::udp::{RECV_BUF, connect_udp};
use crate::transport::{ConnectOptions, Connector};

/// The most of a reply kept while looking for the expected text (plus the
/// text's own length): a banner or reply longer than this is scanned as a
/// sliding window.
const EXPECT_WINDOW: usize = 64 * 1024;

/// How long before the deadline the last attempt starts: enough for a
/// connection on a local network to be made.
const LAST_ATTEMPT_MARGIN: Duration = Duration::from_millis(20);

pub mod http;

pub use http::{HttpTarget, StatusSet};

/// One thing to wait for: an endpoint, or an HTTP(S) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An endpoint: ready when it accepts a connection (and, with a
    /// message and an expected text, answers it).
    Endpoint(Endpoint),
    /// A URL: ready when a `GET` answers with an expected status (and
    /// body text).
    Http(HttpTarget),
}

impl Target {
    /// Parses a target: an `http://` or `https://` URL, or an endpoint
    /// (`default` is the scheme of one written without any).
    pub fn parse(s: &str, default: Scheme) -> Result<Target> {
        match HttpTarget::parse(s)? {
            Some(http) => Ok(Target::Http(http)),
            None => Ok(Target::Endpoint(Endpoint::parse_with_default(s, default)?)),
        }
    }

    /// The endpoint connected to (a URL's host and port, over TLS for
    /// https).
    pub fn endpoint(&self) -> &Endpoint {
        match self {
            Target::Endpoint(endpoint) => endpoint,
            Target::Http(http) => &http.endpoint,
        }
    }
}

impl From<Endpoint> for Target {
    fn from(endpoint: Endpoint) -> Target {
        Target::Endpoint(endpoint)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Endpoint(endpoint) => write!(f, "{endpoint}"),
            Target::Http(http) => write!(f, "{http}"),
        }
    }
}

/// What "ready" means for every target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The target accepts a connection (and, for TLS, completes a verified
    /// handshake).
    Accepts {
        /// Sent after connecting.
        send: Option<Vec<u8>>,
        /// Ready only once what the target sends (for a URL: the body)
        /// contains this.
        expect: Option<Vec<u8>>,
    },
    /// The target no longer accepts connections (`--invert`).
    Closed,
}

/// Everything `wait` needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WaitConfig {
    /// The targets to wait for.
    pub targets: Vec<Target>,
    /// The statuses a URL target must answer with (`--expect-status`).
    pub expect_status: StatusSet,
    /// The overall budget; `None` waits forever.
    pub timeout: Option<Duration>,
    /// The budget of one attempt: connect, send and reading the reply.
    pub attempt_timeout: Duration,
    /// Socket options for the probes (the connect timeout is the attempt
    /// timeout).
    pub connect: ConnectOptions,
    /// The backoff between attempts (its delays only: the attempt cap and
    /// deadline come from `timeout`).
    pub backoff: RetryPolicy,
    /// One ready target is enough (`--any`); otherwise all must be.
    pub any: bool,
    /// What each target must do to count as ready.
    pub readiness: Readiness,
    /// Log each target as it becomes ready at info level (progress for a
    /// terminal); otherwise at debug level, so scripts stay quiet.
    pub progress: bool,
}

impl WaitConfig {
    /// A configuration with the command's defaults for `targets`.
    pub fn new(targets: Vec<Target>) -> WaitConfig {
        WaitConfig {
            targets,
            expect_status: StatusSet::default(),
            timeout: Some(Duration::from_secs(30)),
            attempt_timeout: Duration::from_secs(5),
            connect: ConnectOptions::default(),
            backoff: RetryPolicy {
                max_retries: None,
                deadline: None,
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(1),
            },
            any: false,
            readiness: Readiness::Accepts {
                send: None,
                expect: None,
            },
            progress: false,
        }
    }
}

/// How one target fared.
#[derive(Debug)]
pub struct TargetReport {
    /// The target.
    pub target: Target,
    /// Whether it became ready.
    pub ready: bool,
    /// Attempts made.
    pub attempts: u32,
    /// From the start until it became ready (or until it was given up).
    pub elapsed: Duration,
    /// The last failed attempt's error, if any.
    pub last_error: Option<Error>,
}

/// What `wait` found.
#[derive(Debug)]
pub struct WaitReport {
    /// Whether the wait succeeded: every target ready (or one, with `any`).
    pub ready: bool,
    /// The targets, in the order given. With `any`, targets still being
    /// probed when one became ready are left out.
    pub targets: Vec<TargetReport>,
    /// The whole wait.
    pub elapsed: Duration,
}

impl WaitReport {
    /// The targets that did not become ready.
    pub fn not_ready(&self) -> impl Iterator<Item = &TargetReport> {
        self.targets.iter().filter(|t| !t.ready)
    }
}

/// Waits for the targets. Returns a report whether or not they became
/// ready; an error only for a usage error (such as a transport that cannot
/// be connected to), which waiting cannot fix.
pub async fn run(config: &WaitConfig) -> Result<WaitReport> {
    check(config)?;
    let start = Instant::now();
    let deadline = config.timeout.map(|t| crate::deadline::after(start, t));
    let shared = Arc::new(config.clone());
    let mut tasks = JoinSet::new();
    for (index, target) in config.targets.iter().enumerate() {
        let config = shared.clone();
        let target = target.clone();
        tasks.spawn(async move { (index, wait_for(target, &config, deadline).await) });
    }
    let mut done: Vec<Option<TargetReport>> = config.targets.iter().map(|_| None).collect();
    let mut ready_count = 0;
    while let Some(joined) = tasks.join_next().await {
        let (index, report) = joined.map_err(|e| {
            Error::new(ErrorKind::Io, "wait").with_detail(format!("probe task failed: {e}"))
        })?;
        if !report.ready {
            if let Some(err) = report.last_error {
                if err.kind() == ErrorKind::Usage {
                    return Err(err);
                }
                done[index] = Some(TargetReport {
                    last_error: Some(err),
                    ..report
                });
                continue;
            }
        } else {
            ready_count += 1;
        }
        done[index] = Some(report);
        if config.any && ready_count > 0 {
            // Dropping the set cancels the other probes.
            break;
        }
    }
    let ready = if config.any {
        ready_count > 0
    } else {
        ready_count == config.targets.len()
    };
    Ok(WaitReport {
        ready,
        targets: done.into_iter().flatten().collect(),
        elapsed: start.elapsed(),
    })
}

/// Rejects what waiting cannot answer: a UDP port cannot be probed by
/// connecting (nothing is exchanged), only by a datagram and an expected
/// reply.
fn check(config: &WaitConfig) -> Result<()> {
    let exchanges = matches!(
        &config.readiness,
        Readiness::Accepts {
            send: Some(_),
            expect: Some(_),
        }
    );
    if let Some(udp) = config
        .targets
        .iter()
        .find(|t| t.endpoint().scheme() == Scheme::Udp)
        && !exchanges
    {
        return Err(Error::usage(format!(
            "{udp}: a udp target needs {} and {} (without a reply, nothing shows it is up)",
            Setting::Send,
            Setting::Expect
        )));
    }
    let sends = matches!(&config.readiness, Readiness::Accepts { send: Some(_), .. });
    if let Some(url) = config.targets.iter().find(|t| matches!(t, Target::Http(_)))
        && sends
    {
        return Err(Error::usage(format!(
            "{url}: {} does not apply to a url (netcrab sends the GET request)",
            Setting::Send
        )));
    }
    Ok(())
}

/// Probes one target until it is ready, the deadline passes, or a usage
/// error shows waiting is pointless.
async fn wait_for(target: Target, config: &WaitConfig, deadline: Option<Instant>) -> TargetReport {
    let endpoint = target.endpoint().clone();
    let start = Instant::now();
    let mut rng = fastrand::Rng::new();
    let mut attempts = 0u32;
    let mut last_error: Option<Error> = None;
    let report = |ready: bool, attempts: u32, last_error: Option<Error>| TargetReport {
        target: target.clone(),
        ready,
        attempts,
        elapsed: start.elapsed(),
        last_error,
    };
    // Prepared once per target: TLS trust and certificates load once.
    let options = ConnectOptions {
        connect_timeout: config.attempt_timeout,
        ..config.connect.clone()
    };
    let connector = match Connector::new(&endpoint, &options) {
        Ok(connector) => connector,
        Err(err) => return report(false, attempts, Some(err)),
    };
    loop {
        attempts += 1;
        let attempt = attempt(&connector, &target, config);
        let outcome = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, attempt).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    let err = last_error.unwrap_or_else(|| {
                        Error::new(ErrorKind::Timeout, "")
                            .with_detail("no answer before the timeout")
                    });
                    return report(false, attempts, Some(err));
                }
            },
            None => attempt.await,
        };
        match outcome {
            Ok(()) => {
                let elapsed = fmt_duration(start.elapsed());
                let what = match config.readiness {
                    Readiness::Closed => "closed",
                    Readiness::Accepts { .. } => "ready",
                };
                let plural = if attempts == 1 { "" } else { "s" };
                let line = format!("{target} is {what} ({attempts} attempt{plural}, {elapsed})");
                if config.progress {
                    tracing::info!("{line}");
                } else {
                    tracing::debug!("{line}");
                }
                return report(true, attempts, last_error);
            }
            Err(err) if err.kind() == ErrorKind::Usage => {
                return report(false, attempts, Some(err));
            }
            Err(err) => {
                let mut delay = config.backoff.delay(attempts - 1, &mut rng);
                if let Some(deadline) = deadline {
                    // Never give up early: when the backoff would reach past
                    // the deadline, make one last attempt just before it.
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left <= LAST_ATTEMPT_MARGIN {
                        return report(false, attempts, Some(err));
                    }
                    delay = delay.min(left - LAST_ATTEMPT_MARGIN);
                }
                tracing::debug!(
                    "{target}: attempt {attempts}: {err}; next in {}",
                    fmt_duration(delay)
                );
                last_error = Some(err);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One attempt, bounded by the attempt timeout. `Ok` means the target is
/// in the state waited for.
async fn attempt(connector: &Connector, target: &Target, config: &WaitConfig) -> Result<()> {
    let endpoint = connector.endpoint();
    let attempt_deadline = crate::deadline::from_now(config.attempt_timeout);
    if let (
        Scheme::Udp,
        Some(hp),
        Readiness::Accepts {
            send: Some(send),
            expect: Some(expect),
        },
    ) = (endpoint.scheme(), endpoint.host_port(), &config.readiness)
    {
        return attempt_udp(hp, config, send, expect, attempt_deadline).await;
    }
    let connected = connector.connect().await;
    let (send, expect) = match &config.readiness {
        Readiness::Closed => {
            return match connected {
                Err(err) if err.kind() == ErrorKind::Usage => Err(err),
                Err(err) => {
                    tracing::debug!("{endpoint}: {err}");
                    Ok(())
                }
                Ok(_) => Err(Error::new(ErrorKind::Io, "").with_detail("accepting connections")),
            };
        }
        Readiness::Accepts { send, expect } => (send, expect),
    };
    let mut stream = connected?;
    if let Target::Http(http) = target {
        return http::check(
            &mut stream,
            http,
            &config.expect_status,
            expect.as_deref(),
            attempt_deadline,
        )
        .await;
    }
    if let Some(msg) = send {
        stream
            .write_all(msg)
            .await
            .map_err(|e| Error::io(format!("send to {endpoint}"), e))?;
        stream
            .flush()
            .await
            .map_err(|e| Error::io(format!("send to {endpoint}"), e))?;
    }
    let Some(expect) = expect else {
        return Ok(());
    };
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let text = escape_bytes(expect, LOG_PREVIEW);
    let missing = |seen: &[u8], why: String| {
        Error::new(ErrorKind::Protocol, "read the reply").with_detail(format!(
            "{why} (got \"{}\")",
            escape_bytes(seen, LOG_PREVIEW)
        ))
    };
    loop {
        let read = tokio::time::timeout_at(attempt_deadline, stream.read(&mut buf)).await;
        let n = match read {
            Err(_) => {
                let within = fmt_duration(config.attempt_timeout);
                return Err(missing(&seen, format!("no \"{text}\" within {within}")));
            }
            Ok(Err(e)) => return Err(Error::io(format!("read from {endpoint}"), e)),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Err(missing(&seen, format!("closed without \"{text}\"")));
        }
        seen.extend_from_slice(&buf[..n]);
        if contains(&seen, expect) {
            return Ok(());
        }
        // Keep a window large enough to hold the text across reads.
        let keep = EXPECT_WINDOW + expect.len();
        if seen.len() > keep {
            seen.drain(..seen.len() - keep);
        }
    }
}

/// One UDP attempt: send `send` as one datagram, then read reply
/// datagrams until one contains `expect` or the attempt's deadline passes.
async fn attempt_udp(
    hp: &HostPort,
    config: &WaitConfig,
    send: &[u8],
    expect: &[u8],
    deadline: Instant,
) -> Result<()> {
    let options = ConnectOptions {
        connect_timeout: config.attempt_timeout,
        ..config.connect.clone()
    };
    let target = format!("udp://{hp}");
    let socket = connect_udp(hp, &options).await?;
    let refused = |err: Error| {
        if err.kind() == ErrorKind::Refused {
            err.with_detail("connection refused (icmp port unreachable: nothing listens there)")
        } else {
            err
        }
    };
    socket
        .send(send)
        .await
        .map_err(|e| refused(Error::io(format!("send to {target}"), e)))?;
    let mut buf = vec![0u8; RECV_BUF];
    let text = escape_bytes(expect, LOG_PREVIEW);
    let mut last: Option<Vec<u8>> = None;
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => {
                let within = fmt_duration(config.attempt_timeout);
                return Err(match &last {
                    None => Error::new(ErrorKind::Timeout, format!("wait for {target}"))
                        .with_detail(format!("no reply within {within}")),
                    Some(got) => {
                        Error::new(ErrorKind::Protocol, "read the reply").with_detail(format!(
                            "no \"{text}\" within {within} (got \"{}\")",
                            escape_bytes(got, LOG_PREVIEW)
                        ))
                    }
                });
            }
            Ok(Err(e)) => return Err(refused(Error::io(format!("receive from {target}"), e))),
            Ok(Ok(n)) => n,
        };
        let datagram = &buf[..n];
        if contains(datagram, expect) {
            return Ok(());
        }
        last = Some(datagram[..n.min(LOG_PREVIEW * 4)].to_vec());
    }
}

/// Whether `needle` occurs in `haystack` (an empty needle always does).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_text_anywhere() {
        assert!(contains(b"+PONG\r\n", b"PONG"));
        assert!(contains(b"abc", b""));
        assert!(!contains(b"PON", b"PONG"));
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_with_the_last_error() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target: Endpoint = format!("127.0.0.1:{port}").parse().unwrap();
        let mut config = WaitConfig::new(vec![target.into()]);
        config.timeout = Some(Duration::from_millis(500));
        config.backoff.initial_delay = Duration::from_millis(5);
        config.backoff.max_delay = Duration::from_millis(20);
        let report = run(&config).await.unwrap();
        assert!(!report.ready);
        let target = report.not_ready().next().unwrap();
        assert!(target.attempts >= 2, "{}", target.attempts);
        let err = target.last_error.as_ref().unwrap();
        assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    }
}
