//! Arguments shared by several commands (retry, socket options) and the
//! value parsers for durations.

use std::time::Duration;

use clap::Args;
use netcrab::endpoint::{Endpoint, Scheme};
use netcrab::error::{Error, Result};
use netcrab::retry::RetryPolicy;

/// The exit codes, shown at the end of `--help`. Keep in step with
/// `ErrorKind::exit_code` and the README.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    other i/o error
  2    invalid usage or address
  3    name resolution failed
  4    connection refused
  5    timed out (connect, idle, retry deadline)
  6    connection reset by peer
  7    host or network unreachable
  8    tls error (handshake failed or certificate not accepted)
  9    local resource error (address in use or not available, too many open files, permission denied)
  10   protocol error
  124  wait: the targets were not ready before --timeout
  126  wait: the command could not be executed
  127  wait: the command was not found
  130  interrupted by a second SIGINT (143 for SIGTERM)";

/// The long help's epilogue: a command's examples, then the exit codes
/// (`after_long_help` replaces `after_help` under `--help`, so both go in).
pub fn with_exit_codes(examples: &str) -> String {
    format!("{examples}\n\n{EXIT_CODES}")
}

/// Parses a duration such as `250ms`, `10s`, `1m30s` or a bare number of
/// seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("{s:?} is not a non-negative duration"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 500ms, 10s or 2m ({e})"))
}

/// A duration where `0` means "never" (used for timeouts that can be off).
pub fn optional(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// `-u`/`-U`: the transport of an address written without a scheme, as in
/// netcat.
#[derive(Debug, Clone, Default, Args)]
pub struct SchemeArgs {
    /// UDP: an address without a scheme means udp://HOST:PORT
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// Unix socket: an address without a scheme is a socket path (or @NAME, an abstract socket); with --tls, TLS over it (tls+unix)
    #[arg(short = 'U', long, conflicts_with = "udp")]
    pub unix: bool,
}

impl SchemeArgs {
    /// The scheme the flags ask for, if any.
    pub fn scheme(&self) -> Option<Scheme> {
        if self.udp {
            Some(Scheme::Udp)
        } else if self.unix {
            Some(Scheme::Unix)
        } else {
            None
        }
    }

    /// Parses `addr` with the flags' scheme as the default (`tls` is the
    /// `--tls` flag; with `-U` it means tls+unix); an address whose own
    /// scheme contradicts a flag is an error rather than a guess.
    pub fn parse(&self, addr: &str, tls: bool) -> Result<Endpoint> {
        let wanted = match (tls, self.scheme()) {
            (true, Some(other)) => match Scheme::Tls.with_base(other.base()) {
                Some(layered) => layered,
                None => {
                    return Err(Error::usage(format!(
                        "--tls conflicts with --{}",
                        other.as_str()
                    )));
                }
            },
            (true, None) => Scheme::Tls,
            (false, Some(wanted)) => wanted,
            (false, None) => return addr.parse(),
        };
        let endpoint = Endpoint::parse_with_default(addr, wanted)?;
        if endpoint.scheme() != wanted {
            let flag = match wanted {
                Scheme::Udp => "-u",
                Scheme::Unix => "-U",
                Scheme::TlsUnix => "-U --tls",
                _ => "--tls",
            };
            return Err(Error::usage(format!(
                "{flag} asks for {} but the address {addr:?} is {}",
                wanted.as_str(),
                endpoint.scheme().as_str()
            )));
        }
        Ok(endpoint)
    }
}

/// `--retry*`: how connection attempts are retried.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Retry")]
pub struct RetryArgs {
    /// Retry a failed connection attempt up to N times
    #[arg(long, value_name = "N")]
    pub retry: Option<u32>,
    /// Keep retrying for at most this long overall (no attempt cap unless --retry is given)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retry_for: Option<Duration>,
    /// The backoff before the first retry; it doubles after each, with full jitter
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "100ms")]
    pub retry_delay: Duration,
    /// The largest backoff between retries
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub retry_max_delay: Duration,
}

impl RetryArgs {
    /// The policy these flags ask for; `default_retries` applies when
    /// neither `--retry` nor `--retry-for` is given.
    pub fn policy(&self, default_retries: u32) -> RetryPolicy {
        let max_retries = match (self.retry, self.retry_for) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(default_retries),
        };
        RetryPolicy {
            max_retries,
            deadline: self.retry_for,
            initial_delay: self.retry_delay,
            max_delay: self.retry_max_delay.max(self.retry_delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_flags_set_the_default_and_must_agree() {
        let udp = SchemeArgs {
            udp: true,
            unix: false,
        };
        let unix = SchemeArgs {
            udp: false,
            unix: true,
        };
        assert_eq!(
            udp.parse("127.0.0.1:53", false).unwrap().scheme(),
            Scheme::Udp
        );
        assert_eq!(udp.parse("udp://h:1", false).unwrap().scheme(), Scheme::Udp);
        assert!(
            udp.parse("tcp://h:1", false)
                .unwrap_err()
                .to_string()
                .contains("-u asks for udp")
        );
        assert_eq!(
            unix.parse("/run/x.sock", false).unwrap().to_string(),
            "unix:///run/x.sock"
        );
        assert_eq!(
            unix.parse("@name", false).unwrap().to_string(),
            "unix:@name"
        );
        assert!(unix.parse("udp://h:1", false).is_err());
        assert_eq!(
            SchemeArgs::default().parse("h:1", false).unwrap().scheme(),
            Scheme::Tcp
        );
        let none = SchemeArgs::default();
        assert_eq!(none.parse("h:1", true).unwrap().scheme(), Scheme::Tls);
        assert!(
            none.parse("tcp://h:1", true)
                .unwrap_err()
                .to_string()
                .contains("--tls asks for tls")
        );
        assert!(
            udp.parse("h:1", true)
                .unwrap_err()
                .to_string()
                .contains("--tls conflicts with --udp")
        );
        // -U --tls: TLS over the Unix socket.
        assert_eq!(
            unix.parse("/run/x.sock", true).unwrap().to_string(),
            "tls+unix:///run/x.sock"
        );
        assert_eq!(
            unix.parse("tls+unix:@n", true).unwrap().to_string(),
            "tls+unix:@n"
        );
        assert!(
            unix.parse("unix:///x", true)
                .unwrap_err()
                .to_string()
                .contains("-U --tls asks for tls+unix")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    fn retry_args(retry: Option<u32>, retry_for: Option<u64>) -> RetryArgs {
        RetryArgs {
            retry,
            retry_for: retry_for.map(Duration::from_secs),
            retry_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(10),
        }
    }

    #[test]
    fn retry_flags_resolve_to_a_policy() {
        assert_eq!(retry_args(None, None).policy(0).max_retries, Some(0));
        assert_eq!(retry_args(Some(3), None).policy(0).max_retries, Some(3));
        let p = retry_args(None, Some(5)).policy(0);
        assert_eq!(p.max_retries, None);
        assert_eq!(p.deadline, Some(Duration::from_secs(5)));
        assert_eq!(retry_args(Some(2), Some(5)).policy(0).max_retries, Some(2));
    }
}
