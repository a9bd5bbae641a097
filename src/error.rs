//! Errors: one [`Error`] type whose [`ErrorKind`] decides the exit code.
//!
//! Every failure netcrab reports is classified once, where it happens, into a
//! kind (refused, timeout, reset, ...). The kind drives two decisions made far
//! away from the failure: whether the retry policy tries again
//! ([`ErrorKind::is_retryable`]) and which exit code `main` returns
//! ([`ErrorKind::exit_code`]). Messages are short and lowercase, in the style
//! of `connection refused`, and name the address they concern.

use std::fmt;
use std::io;
use std::time::Duration;

/// What went wrong, coarsely: enough to decide on a retry and an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The command line or an address given by the user is malformed.
    Usage,
    /// The host name does not resolve (unknown host): permanent.
    Resolve,
    /// Name resolution failed temporarily (the resolver could not be reached).
    ResolveTemporary,
    /// The peer actively refused the connection (nothing listens there).
    Refused,
    /// An operation did not complete in time (connect, idle, drain).
    Timeout,
    /// The peer reset or aborted the connection.
    Reset,
    /// The host or its network is unreachable.
    Unreachable,
    /// A local resource problem: address in use or not available, too many
    /// open files, permission denied. Retrying does not help.
    Local,
    /// A TLS handshake or certificate verification failure.
    Tls,
    /// The peer broke the protocol (for example a line longer than allowed).
    Protocol,
    /// Any other I/O error.
    Io,
    /// A proxy could not reach the target (SOCKS "connection refused",
    /// "host unreachable", HTTP 502/503/504): the target, not the proxy,
    /// is the problem, and it may heal.
    ProxyRefused,
    /// A proxy will not serve us: wrong or missing credentials, its rules
    /// forbid the target (SOCKS "not allowed by ruleset", HTTP 403/407).
    ProxyDenied,
    /// `wait`: the targets did not become ready before the timeout.
    NotReady,
    /// `wait`: the command to run was found but could not be executed.
    CommandNotExecutable,
    /// `wait`: the command to run was not found.
    CommandNotFound,
}

impl ErrorKind {
    /// Every kind, for front ends that document them (the CLI's exit-code
    /// table is checked against it).
    pub const ALL: &[ErrorKind] = &[
        ErrorKind::Usage,
        ErrorKind::Resolve,
        ErrorKind::ResolveTemporary,
        ErrorKind::Refused,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Unreachable,
        ErrorKind::Local,
        ErrorKind::Tls,
        ErrorKind::Protocol,
        ErrorKind::Io,
        ErrorKind::ProxyRefused,
        ErrorKind::ProxyDenied,
        ErrorKind::NotReady,
        ErrorKind::CommandNotExecutable,
        ErrorKind::CommandNotFound,
    ];

    /// Classifies an [`io::Error`] from a socket operation.
    pub fn of_io(err: &io::Error) -> ErrorKind {
        use io::ErrorKind as K;
        if let Some(code) = err.raw_os_error() {
            match code {
                libc::ECONNREFUSED => return ErrorKind::Refused,
                libc::ECONNRESET | libc::ECONNABORTED | libc::EPIPE => return ErrorKind::Reset,
                libc::ETIMEDOUT => return ErrorKind::Timeout,
                libc::EHOSTUNREACH | libc::ENETUNREACH | libc::ENETDOWN | libc::EHOSTDOWN => {
                    return ErrorKind::Unreachable;
                }
                libc::EADDRINUSE
                | libc::EADDRNOTAVAIL
                | libc::EACCES
                | libc::EPERM
                | libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM => return ErrorKind::Local,
                _ => {}
            }
        }
        match err.kind() {
            K::ConnectionRefused => ErrorKind::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => ErrorKind::Reset,
            K::TimedOut => ErrorKind::Timeout,
            K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown => ErrorKind::Unreachable,
            K::AddrInUse | K::AddrNotAvailable | K::PermissionDenied => ErrorKind::Local,
            K::InvalidInput => ErrorKind::Usage,
            _ => ErrorKind::Io,
        }
    }

    /// Whether a connection attempt that failed this way is worth retrying.
    ///
    /// Refusals, resets, timeouts, unreachable hosts and temporary resolver
    /// failures can heal by themselves; a malformed address, an unknown host
    /// or a local resource problem cannot.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Refused
                | ErrorKind::Reset
                | ErrorKind::Timeout
                | ErrorKind::Unreachable
                | ErrorKind::ResolveTemporary
                | ErrorKind::ProxyRefused
        )
    }

    /// The process exit code for a command that failed this way. Stable:
    /// scripts depend on it, and the README lists it.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Io => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Resolve | ErrorKind::ResolveTemporary => 3,
            ErrorKind::Refused => 4,
            ErrorKind::Timeout => 5,
            ErrorKind::Reset => 6,
            ErrorKind::Unreachable => 7,
            ErrorKind::Tls => 8,
            ErrorKind::Local => 9,
            ErrorKind::Protocol => 10,
            ErrorKind::ProxyRefused => 11,
            ErrorKind::ProxyDenied => 12,
            // As timeout(1), wait-for-it and shells use them.
            ErrorKind::NotReady => 124,
            ErrorKind::CommandNotExecutable => 126,
            ErrorKind::CommandNotFound => 127,
        }
    }

    /// A short lowercase description of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Usage => "invalid usage",
            ErrorKind::Resolve => "unknown host",
            ErrorKind::ResolveTemporary => "temporary name resolution failure",
            ErrorKind::Refused => "connection refused",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Reset => "connection reset by peer",
            ErrorKind::Unreachable => "host unreachable",
            ErrorKind::Local => "local resource error",
            ErrorKind::Tls => "tls error",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Io => "i/o error",
            ErrorKind::ProxyRefused => "the proxy could not reach the target",
            ErrorKind::ProxyDenied => "the proxy denied the request",
            ErrorKind::NotReady => "not ready before the timeout",
            ErrorKind::CommandNotExecutable => "cannot execute",
            ErrorKind::CommandNotFound => "command not found",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a netcrab operation: its kind, what was being done, to which
/// address, and the underlying cause.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    /// What was being done, e.g. `connect to 127.0.0.1:8080`.
    context: String,
    /// A short description of what went wrong; defaults to the kind's.
    detail: String,
    /// How many attempts were made and over how long, when a retry policy
    /// gave up; shown so the user knows the retries happened.
    attempts: Option<(u32, Duration)>,
    source: Option<io::Error>,
}

impl Error {
    /// A new error of `kind` while doing `context`, with the kind's message.
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Error {
        Error {
            kind,
            context: context.into(),
            detail: kind.as_str().to_owned(),
            attempts: None,
            source: None,
        }
    }

    /// A usage error: a malformed argument or address.
    pub fn usage(msg: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Usage,
            context: String::new(),
            detail: msg.into(),
            attempts: None,
            source: None,
        }
    }

    /// Classifies `err` from an operation described by `context`. An I/O
    /// error that carries an [`Error`] was classified already, by the layer
    /// it came from (TLS does so, with its own messages): its kind and
    /// message are kept.
    pub fn io(context: impl Into<String>, err: io::Error) -> Error {
        if let Some(inner) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return Error {
                kind: inner.kind,
                context: context.into(),
                detail: inner.detail.clone(),
                attempts: None,
                source: Some(err),
            };
        }
        let kind = ErrorKind::of_io(&err);
        Error {
            kind,
            context: context.into(),
            detail: describe_io(kind, &err),
            attempts: None,
            source: Some(err),
        }
    }

    /// Replaces the short description.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = detail.into();
        self
    }

    /// Sets what was being done, for an error classified where that was
    /// not known (a proxy's reply decoded by a codec, say); an error that
    /// already has one keeps it.
    pub fn with_context(mut self, context: impl Into<String>) -> Error {
        if self.context.is_empty() {
            self.context = context.into();
        }
        self
    }

    /// Replaces what was being done (keeping the kind and the detail).
    pub(crate) fn replace_context(mut self, context: impl Into<String>) -> Error {
        self.context = context.into();
        self
    }

    /// Records the underlying I/O error.
    pub(crate) fn with_source(mut self, source: io::Error) -> Error {
        self.source = Some(source);
        self
    }

    /// Records that a retry policy made `attempts` attempts over `elapsed`.
    pub fn with_attempts(mut self, attempts: u32, elapsed: Duration) -> Error {
        self.attempts = Some((attempts, elapsed));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The short description of what went wrong (without the context).
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The number of attempts made, when a retry policy gave up.
    pub fn attempts(&self) -> Option<u32> {
        self.attempts.map(|(n, _)| n)
    }

    /// The exit code for this error (see [`ErrorKind::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

/// The message for an I/O error: the kind's own words where they say it all,
/// the OS's words (lowercased, without the `(os error N)` suffix) otherwise.
fn describe_io(kind: ErrorKind, err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => "too many open files".to_owned(),
        Some(libc::EADDRNOTAVAIL) => {
            "address not available (a local problem: no such local address, or local ports exhausted)"
                .to_owned()
        }
        Some(libc::EADDRINUSE) => "address in use".to_owned(),
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".to_owned(),
        _ => match kind {
            ErrorKind::Io | ErrorKind::Usage | ErrorKind::Local => {
                let text = err.to_string();
                let text = match text.find(" (os error") {
                    Some(i) => &text[..i],
                    None => &text,
                };
                lowercase_first(text)
            }
            _ => kind.as_str().to_owned(),
        },
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            f.write_str(&self.detail)?;
        } else {
            write!(f, "{}: {}", self.context, self.detail)?;
        }
        if let Some((n, elapsed)) = self.attempts {
            let plural = if n == 1 { "" } else { "s" };
            write!(
                f,
                " (after {n} attempt{plural} over {})",
                fmt_duration(elapsed)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// Formats a duration for people: `850ms`, `2.3s`, `4m10s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A `Result` whose error is netcrab's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_carrying_a_classified_error_keeps_its_kind_and_message() {
        let inner = Error::new(ErrorKind::Tls, "").with_detail("bad record mac");
        let io = io::Error::new(io::ErrorKind::InvalidData, inner);
        let err = Error::io("read from 127.0.0.1:1", io);
        assert_eq!(err.kind(), ErrorKind::Tls);
        assert_eq!(err.to_string(), "read from 127.0.0.1:1: bad record mac");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn classifies_os_errors() {
        let e = |code| ErrorKind::of_io(&io::Error::from_raw_os_error(code));
        assert_eq!(e(libc::ECONNREFUSED), ErrorKind::Refused);
        assert_eq!(e(libc::ECONNRESET), ErrorKind::Reset);
        assert_eq!(e(libc::ETIMEDOUT), ErrorKind::Timeout);
        assert_eq!(e(libc::ENETUNREACH), ErrorKind::Unreachable);
        assert_eq!(e(libc::EADDRNOTAVAIL), ErrorKind::Local);
        assert_eq!(e(libc::EMFILE), ErrorKind::Local);
        assert_eq!(e(libc::EACCES), ErrorKind::Local);
        assert_eq!(e(libc::EIO), ErrorKind::Io);
    }

    #[test]
    fn retryable_kinds() {
        assert!(ErrorKind::Refused.is_retryable());
        assert!(ErrorKind::Timeout.is_retryable());
        assert!(ErrorKind::ResolveTemporary.is_retryable());
        assert!(!ErrorKind::Resolve.is_retryable());
        assert!(!ErrorKind::Local.is_retryable());
        assert!(!ErrorKind::Usage.is_retryable());
    }

    #[test]
    fn all_lists_every_kind_once() {
        // Exhaustive: a new kind fails to compile here until it has a
        // number, and then fails the test until ALL lists it.
        fn ordinal(kind: ErrorKind) -> usize {
            match kind {
                ErrorKind::Usage => 0,
                ErrorKind::Resolve => 1,
                ErrorKind::ResolveTemporary => 2,
                ErrorKind::Refused => 3,
                ErrorKind::Timeout => 4,
                ErrorKind::Reset => 5,
                ErrorKind::Unreachable => 6,
                ErrorKind::Local => 7,
                ErrorKind::Tls => 8,
                ErrorKind::Protocol => 9,
                ErrorKind::Io => 10,
                ErrorKind::ProxyRefused => 11,
                ErrorKind::ProxyDenied => 12,
                ErrorKind::NotReady => 13,
                ErrorKind::CommandNotExecutable => 14,
                ErrorKind::CommandNotFound => 15,
            }
        }
        let mut seen: Vec<usize> = ErrorKind::ALL.iter().map(|k| ordinal(*k)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn exit_codes_are_distinct_per_kind_family() {
        assert_eq!(ErrorKind::Usage.exit_code(), 2);
        assert_eq!(ErrorKind::Refused.exit_code(), 4);
        assert_eq!(ErrorKind::Timeout.exit_code(), 5);
        assert_eq!(ErrorKind::ProxyRefused.exit_code(), 11);
        assert_eq!(ErrorKind::ProxyDenied.exit_code(), 12);
        assert!(ErrorKind::ProxyRefused.is_retryable());
        assert!(!ErrorKind::ProxyDenied.is_retryable());
        assert_ne!(ErrorKind::Io.exit_code(), 0);
        assert_eq!(ErrorKind::NotReady.exit_code(), 124);
        assert_eq!(ErrorKind::CommandNotExecutable.exit_code(), 126);
        assert_eq!(ErrorKind::CommandNotFound.exit_code(), 127);
    }

    #[test]
    fn messages_are_short_lowercase_and_name_the_attempts() {
        let err = Error::io(
            "connect to 127.0.0.1:9",
            io::Error::from_raw_os_error(libc::ECONNREFUSED),
        )
        .with_attempts(3, Duration::from_millis(1500));
        assert_eq!(
            err.to_string(),
            "connect to 127.0.0.1:9: connection refused (after 3 attempts over 1.5s)"
        );
        let err = Error::io("bind", io::Error::from_raw_os_error(libc::EMFILE));
        assert_eq!(err.to_string(), "bind: too many open files");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(fmt_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(fmt_duration(Duration::from_millis(2300)), "2.3s");
        assert_eq!(fmt_duration(Duration::from_secs(250)), "4m10s");
    }
}
